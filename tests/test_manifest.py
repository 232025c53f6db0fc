"""manifest.yml: valid for Slack's published v1 schema, and in step with what the app serves and needs."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from jsonschema.protocols import Validator

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "manifest.yml"
SCHEMA = REPO.parent / "shared" / "slack" / "manifest.schema.1.0.0.json"

BOT_SCOPES = {
    "app_mentions:read",
    "chat:write",
    "commands",
    "channels:history",
    "groups:history",
    "im:history",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "usergroups:read",
    "files:write",
}
BOT_EVENTS = {"app_mention", "message.im", "app_home_opened"}
# The scope without which Slack will not deliver each event (or will refuse the manifest).
SCOPE_FOR_EVENT = {"app_mention": "app_mentions:read", "message.im": "im:history", "app_home_opened": None}


def _regex(validator: Validator, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    # Slack's schema spells some patterns `regex`, which standard JSON Schema ignores; Slack enforces them.
    if isinstance(instance, str) and not re.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@pytest.fixture(scope="module")
def validator() -> Validator:
    if not SCHEMA.is_file():
        pytest.fail(
            f"Slack's manifest schema is missing: expected {SCHEMA} (shared/slack/ next to the repository); "
            "it is used from there, never copied into the project"
        )
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    strict = jsonschema.validators.extend(jsonschema.Draft7Validator, {"regex": _regex})
    return strict(schema)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def errors(validator: Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(document)]


def test_the_manifest_is_valid_for_slacks_published_schema(validator: Validator, manifest: dict[str, Any]) -> None:
    assert errors(validator, manifest) == []


def test_the_schema_check_catches_what_slack_would_refuse(validator: Validator, manifest: dict[str, Any]) -> None:
    broken = copy.deepcopy(manifest)
    broken["features"]["slash_commands"][0]["command"] = "cloudops"
    broken["display_information"]["background_color"] = "navy"
    del broken["features"]["bot_user"]["display_name"]

    found = errors(validator, broken)
    assert len(found) == 3
    assert any(e.startswith("features/slash_commands/0/command") for e in found)
    assert any(e.startswith("display_information/background_color") for e in found)
    assert any(e.startswith("features/bot_user") and "display_name" in e for e in found)


def test_the_command_shortcut_and_events_the_listeners_serve_are_declared(manifest: dict[str, Any]) -> None:
    features, settings = manifest["features"], manifest["settings"]
    [command] = features["slash_commands"]
    assert (command["command"], command["usage_hint"]) == ("/cloudops", "history [filters] | help")
    [shortcut] = features["shortcuts"]
    assert (shortcut["name"], shortcut["type"], shortcut["callback_id"]) == (
        "Audit this thread",
        "message",
        "audit_thread",
    )
    assert set(settings["event_subscriptions"]["bot_events"]) == BOT_EVENTS
    assert "user_events" not in settings["event_subscriptions"]
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    assert features["bot_user"]["always_online"] is True
    assert manifest["display_information"]["name"] == "CloudOps" and manifest["display_information"]["description"]


def test_the_app_runs_over_socket_mode_with_interactivity_and_no_org_deploy_or_token_rotation(
    manifest: dict[str, Any],
) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["org_deploy_enabled"] is False and settings["token_rotation_enabled"] is False
    # Socket Mode carries every request; a request URL left in would only go stale.
    assert "request_url" not in settings["event_subscriptions"] and "request_url" not in settings["interactivity"]


def test_only_the_bot_scopes_the_code_needs_are_asked_for_each_with_its_reason(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "no user token scopes: CloudOps acts only as its bot"
    assert sorted(scopes["bot"]) == sorted(BOT_SCOPES)
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        needed = SCOPE_FOR_EVENT[event]
        assert needed is None or needed in scopes["bot"], f"{event} needs {needed}"
    assert "commands" in scopes["bot"]  # the slash command and the shortcut

    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    for scope in scopes["bot"]:
        [index] = [i for i, line in enumerate(lines) if line.strip() == f"- {scope}"]
        assert lines[index - 1].strip().startswith("#"), f"{scope} has no comment saying why it is needed"
