"""False positives, measured on real AWS responses: the ``Output::`` blocks of the aws CLI's own examples.

Redaction may change at most 1% of their values that are not secrets. A value counts as a secret when
botocore's model marks its member ``sensitive``, when it holds one of AWS's documented example credentials
(``AKIAIOSFODNN7EXAMPLE``, ``wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY``...), when it is a signed URL, or when
it sits under one of the members below that hold secrets without the trait. JSON outputs are compared value
by value after being streamed through the redactor as the aws CLI prints them, and again through
``redact_data`` as parsed; other outputs line by line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
from botocore import xform_name

from engine import awscli_model, sensitive
from engine.redact import REDACTED, StreamRedactor, clear_registered_secrets, redact_data
from tests.awscli_examples import ExampleOutput, example_outputs

MAX_CHANGED = 0.01

# Members these examples fill with credentials that botocore's models do not mark sensitive.
SECRET_MEMBERS = frozenset(
    {
        "SessionToken",  # STS and GameLift credentials
        "sessionToken",  # CodePipeline job credentials
        "SecretAccessKey",
        "SecretToken",  # CodePipeline webhook authentication
        "client_secret",  # Cognito identity provider details
        "authorizationToken",  # ECR
        "PrivateKey",  # IoT, Greengrass
        "privateKey",  # Lightsail access details
        "PrivateKeyPlaintext",  # KMS data key pairs
        "PasswordData",  # EC2 Windows password, encrypted to the key pair
        "passphrase",  # IVS stream keys
        "token",  # IVS chat and EKS tokens
    }
)
# AWS's documentation credentials: key ids marked EXAMPLE or XMPL, and its example secret keys.
_EXAMPLE_CREDENTIAL = re.compile(
    r"(?:AKIA|ASIA|ACCA|ABIA)[A-Z0-9]*(?:EXAMPLE|XMPL)[A-Z0-9]*|(?:AKIA|ASIA)[A-Z0-9]{16}|[A-Za-z0-9/+]{20,}EXAMPLEKEY"
)
# A signed URL is a bearer credential.
_SIGNED_URL = re.compile(r"[?&](?:X-Amz-Signature|Signature|X-Amz-Security-Token|AWSAccessKeyId)=")


@pytest.fixture(autouse=True)
def _no_registered_secrets() -> Iterator[None]:
    clear_registered_secrets()
    yield
    clear_registered_secrets()


@cache
def _cli_services() -> dict[str, str]:
    return {awscli_model.cli_service_name(name): name for name in awscli_model.botocore_services()}


def _operation(example: ExampleOutput) -> tuple[str, str] | None:
    service_cli, command = example.operation
    service = _cli_services().get(service_cli)
    if service is None:
        return None
    for operation in awscli_model.service_model(service).operation_names:
        if xform_name(operation, "-") == command:
            return service, operation
    return None


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _is_secret(path: tuple[Any, ...], value: Any, sensitive_paths: set[tuple[Any, ...]]) -> bool:
    if path in sensitive_paths:
        return True
    key = next((part for part in reversed(path) if isinstance(part, str)), "")
    if key in SECRET_MEMBERS:
        return True
    return isinstance(value, str) and bool(_EXAMPLE_CREDENTIAL.search(value) or _SIGNED_URL.search(value))


def _streamed(text: str) -> str:
    redactor = StreamRedactor()
    return "".join(redactor.feed(line) for line in text.splitlines(keepends=True))


@dataclass
class Tally:
    values: int = 0
    changed: list[str] = field(default_factory=list)

    def share(self) -> float:
        return len(self.changed) / self.values


@dataclass
class Measured:
    streamed: Tally = field(default_factory=Tally)
    parsed: Tally = field(default_factory=Tally)
    lines: Tally = field(default_factory=Tally)
    secrets: int = 0


@cache
def measure() -> Measured:
    result = Measured()
    for example in example_outputs():
        try:
            data = json.loads(example.text)
        except ValueError:
            data = None
        streamed = _streamed(example.text)
        if data is None:
            for before, after in zip(example.text.splitlines(), streamed.splitlines(), strict=True):
                if not before.strip():
                    continue
                if _EXAMPLE_CREDENTIAL.search(before) or _SIGNED_URL.search(before):
                    result.secrets += 1
                    continue
                result.lines.values += 1
                if after != before:
                    result.lines.changed.append(f"{example.where}: {before.strip()[:100]}")
            continue
        operation = _operation(example)
        by_model = sensitive.redact_output(*operation, data) if operation else data
        sensitive_paths = {path for path, value in _leaves(by_model) if value == REDACTED}
        try:
            reparsed = dict(_leaves(json.loads(streamed)))
        except ValueError:
            reparsed = {}
        parsed = dict(_leaves(redact_data(data)))
        for path, value in _leaves(data):
            if _is_secret(path, value, sensitive_paths):
                result.secrets += 1
                continue
            for tally, redacted in ((result.streamed, reparsed), (result.parsed, parsed)):
                tally.values += 1
                if redacted.get(path, REDACTED) != value:
                    tally.changed.append(f"{example.where}: {path[-1] if path else ''}={str(value)[:80]}")
    return result


def test_the_examples_are_thousands_of_real_responses() -> None:
    measured = measure()
    assert len(example_outputs()) > 4_000
    assert measured.streamed.values > 40_000
    assert measured.lines.values > 8_000
    assert measured.secrets > 100


def test_streamed_json_outputs_keep_99_percent_of_their_values() -> None:
    tally = measure().streamed
    assert tally.share() <= MAX_CHANGED, tally.changed[:50]


def test_parsed_json_outputs_keep_99_percent_of_their_values() -> None:
    tally = measure().parsed
    assert tally.share() <= MAX_CHANGED, tally.changed[:50]


def test_text_outputs_keep_99_percent_of_their_lines() -> None:
    tally = measure().lines
    assert tally.share() <= MAX_CHANGED, tally.changed[:50]
