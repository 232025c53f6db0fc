"""What a `cloudops` command loads: only what it uses, so that the quick commands start quickly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import engine.history

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples" / "s3-reports-bucket.yaml"

# The history store's clients (qdrant-client alone took 1.8 s to import), the HTTP client, the Slack stack,
# numpy (through qdrant-client) and boto3 (validation reads commands with botocore and the aws CLI).
NOT_FOR_QUICK_COMMANDS = {"qdrant_client", "qdrant_edge", "aiohttp", "slack_bolt", "slack_sdk", "numpy", "boto3"}


def imported_packages(tmp_path: Path, *args: str) -> set[str]:
    """The top-level packages a `cloudops` process imports, from `python -X importtime`."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CLOUDOPS_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("imported package")
    }
    return {module.split(".")[0] for module in modules}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["validate", str(PLAN)], id="validate"),
        pytest.param(["validate", str(PLAN), "--json"], id="validate-json"),
        pytest.param(["schema"], id="schema"),
        pytest.param(["--help"], id="help"),
    ],
)
def test_validate_schema_and_help_import_no_store_http_slack_numpy_or_boto3(tmp_path: Path, args: list[str]) -> None:
    loaded = imported_packages(tmp_path, *args)
    assert not loaded & NOT_FOR_QUICK_COMMANDS
    if args[0] == "validate":
        assert {"awscli", "botocore"} <= loaded  # the check above saw a command that did real work
    else:
        assert not loaded & {"awscli", "botocore"}  # neither needs the aws CLI's tables


def test_history_loads_the_embedded_store_but_not_the_server_client(tmp_path: Path) -> None:
    loaded = imported_packages(tmp_path, "history", "--json")
    assert "qdrant_edge" in loaded
    assert not loaded & {"qdrant_client", "aiohttp", "slack_bolt", "slack_sdk", "numpy"}


def test_history_package_still_exports_every_name() -> None:
    for name in engine.history.__all__:
        value = getattr(engine.history, name)
        module = sys.modules[engine.history._MODULE_OF[name]]
        assert value is getattr(module, name), name
    assert set(engine.history.__all__) == set(engine.history._MODULE_OF)
    with pytest.raises(AttributeError):
        _ = engine.history.NoSuchName  # type: ignore[attr-defined]
