"""Where redaction's rules come from: detect-secrets' regex plugins, the supplement beside them, botocore's enum
values; and what stays readable because of them."""

from __future__ import annotations

import json
import re

import pytest
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector

from engine.redact import REDACTED, StreamRedactor, redact_data, redact_text
from engine.redaction import detector, enum_source
from engine.redaction.enum_data import ENUM_VALUES, NEVER_TEXT
from engine.redaction.keys import is_enum_value, is_sensitive_key
from tests.secret_corpus import shapes


def test_every_regex_plugin_of_the_library_is_in_the_scanner_but_the_left_out_ones() -> None:
    plugins = {
        cls.__name__ for cls in get_mapping_from_secret_type_to_class().values() if issubclass(cls, RegexBasedDetector)
    }
    in_scanner = {rule.source for rule in detector.rules()}
    assert plugins - in_scanner == {
        "IPPublicDetector",
        "PrivateKeyDetector",
        "IbmCloudIamDetector",
        "IbmCosHmacDetector",
    }
    assert len(plugins & in_scanner) >= 18


def test_library_patterns_are_read_from_the_installed_library() -> None:
    library = {
        denied.pattern
        for cls in get_mapping_from_secret_type_to_class().values()
        if issubclass(cls, RegexBasedDetector)
        for denied in cls.denylist
    }
    compiled = [rule for rule in detector.rules() if rule.source.endswith("Detector")]
    assert compiled
    for rule in compiled:
        assert any(source in rule.pattern.pattern for source in library)


def test_the_supplement_only_holds_issuers_the_library_misses() -> None:
    library = [rule for rule in detector.rules() if rule.source.endswith("Detector")]
    supplement = [rule for rule in detector.rules() if not rule.source.endswith("Detector")]
    for shape in shapes():
        for rule in supplement:
            match = rule.pattern.search(shape.text)
            if match is None:
                continue
            found_by_library = [lib.source for lib in library if lib.pattern.search(match.group())]
            # When the library learns an issuer, its SUPPLEMENT entry goes.
            assert not found_by_library, (rule.source, shape.name, found_by_library)


def test_every_match_holds_one_of_its_rules_triggers() -> None:
    for shape in shapes():
        for rule in detector.rules():
            for match in rule.pattern.finditer(shape.text):
                if rule.triggers:
                    assert any(t in match.group().lower() for t in rule.triggers), (rule.source, shape.name)
                elif rule.exact:
                    assert any(t in match.group() for t in rule.exact), (rule.source, shape.name)


@pytest.mark.parametrize(
    ("pattern", "triggers"),
    [
        (r"(?:r|s)k_live_[0-9a-zA-Z]{24}", ("rk_live_", "sk_live_")),
        (r"(ghp|gho)_[A-Za-z0-9_]{36}", ("gho_", "ghp_")),
        (r"SG\.[a-zA-Z0-9_-]{22}\.[a-zA-Z0-9_-]{43}", ("sg.",)),
        (r"\d{8,10}:[0-9A-Za-z_-]{35}", ()),
    ],
)
def test_triggers_are_read_from_the_pattern(pattern: str, triggers: tuple[str, ...]) -> None:
    assert detector.triggers_of(re.compile(pattern)) == triggers


def test_a_match_is_widened_to_the_whole_token() -> None:
    key = "sk_live_" + "Ab3dE" * 19
    assert redact_text(f"stripe {key}.") == f"stripe {REDACTED}."


def test_enum_table_is_what_the_installed_botocore_says() -> None:
    assert enum_source.build() == (ENUM_VALUES, NEVER_TEXT)


OUTPUT = {
    "MetadataOptions": {"State": "applied", "HttpTokens": "required", "HttpPutResponseHopLimit": 2},
    "UserId": "AIDASAMPLEUSERID1234",
    "RoleUser": "AROA3XFRBF535PLBIFPI4:session",
    "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
    "LockToken": "447e55ac-2396-4c6d-b9f9-86b67c17f8b5",
    "CreationToken": "console-d7f56c5f-e433-41ca-8307-9d9c0abcdef1",
    "SelectiveAuth": "Disabled",
    "usage": {"inputTokens": 512, "outputTokens": 128},
    "PublicKeyMaterial": "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEqVWUtqs6EktQMR1sCYmEzGvRwtaycI16\n-----END PUBLIC KEY-----",
}


@pytest.mark.parametrize("how", ["text", "stream", "data"])
def test_identifiers_and_enum_values_stay_readable(how: str) -> None:
    text = json.dumps(OUTPUT, indent=4)
    if how == "text":
        assert redact_text(text) == text
    elif how == "stream":
        redactor = StreamRedactor()
        assert "".join(redactor.feed(line) for line in text.splitlines(keepends=True)) == text
    else:
        assert redact_data(OUTPUT) == OUTPUT


def test_enum_values_stay_readable_in_text_and_table_output() -> None:
    assert redact_text("METADATAOPTIONS\tHttpTokens: required") == "METADATAOPTIONS\tHttpTokens: required"
    row = "||  HttpTokens               |  required     ||"
    assert redact_text(row) == row


def test_a_secret_under_an_enum_named_key_is_still_redacted() -> None:
    assert is_enum_value("HttpTokens", "required")
    assert not is_enum_value("AccessToken", "eyJraWQiOiJhYmMifQ")
    assert redact_data({"AccessToken": "eyJraWQiOiJhYmMiLCJhbGciOiJSUzI1NiJ9"}) == {"AccessToken": REDACTED}


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("HttpTokens", True),  # the name still reads as a secret; its enum values are kept
        ("LockToken", False),
        ("NextLockToken", False),
        ("CreationToken", False),
        ("SubjectFromWebIdentityToken", False),
        ("PublicKeyMaterial", False),
        ("PrivateKeyCiphertextBlob", False),
        ("inputTokens", False),
        ("DkimTokens", False),
        ("storepass", True),
        ("psk", True),
        ("bypass", False),
    ],
)
def test_key_sensitivity_of_names_botocore_and_tools_use(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive
