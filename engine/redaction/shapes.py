"""Secret shapes the ruleset in ``detector`` does not describe: AWS's own credentials in the forms AWS output
carries them, secrets in URLs, command lines and credential files, and base64 that decodes to a secret.

Each rule runs only when one of its lowercase triggers is in the line: most lines of real output trigger
nothing, which keeps streaming cheap.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from engine.redaction.gate import add_triggers
from engine.redaction.keys import is_sensitive_key

REDACTED = "[REDACTED]"

PEM_BEGIN = re.compile(
    r"-----BEGIN(?: [A-Z0-9]+)* PRIVATE KEY(?: BLOCK)?-----|---- BEGIN SSH2(?: [A-Z]+)* PRIVATE KEY ----"
)
PEM_END = re.compile(r"-----END(?: [A-Z0-9]+)* PRIVATE KEY(?: BLOCK)?-----|---- END SSH2(?: [A-Z]+)* PRIVATE KEY ----")
# PuTTY key files have no END line: the block ends with its MAC.
PUTTY_BEGIN = re.compile(r"PuTTY-User-Key-File-\d+:")
PUTTY_END = re.compile(r"Private-MAC:[ \t]*\S+")

AUTH_SCHEME = re.compile(r"(?i:bearer|basic|digest|token|negotiate|ntlm|aws4-hmac-sha256|bot|sso|ssws)[ \t]+")

# Key ids are upper case and digits, so a lower-case neighbour ("\\nAKIA...", "\\tASIA...") or a
# percent escape ("%2FAKIA...") still bounds one.
_AWS_KEY_ID = re.compile(r"(?:(?<![A-Z0-9])|(?<=%[0-9A-Fa-f]{2}))(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])")
_BASE64_40 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])")
# AWS session tokens are base64 of a protobuf whose first field is "origin" or "er/aws", so they begin
# with one of these two runs after a few bytes of framing.
_SESSION_TOKEN = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{2,6}(?:b3JpZ2lu|ZXIvYXdz)[A-Za-z0-9+/=%]{16,}")
_ECR_TOKEN = re.compile(
    r"(?<![A-Za-z0-9+/])(?:QVdTOm[A-Za-z0-9+/]{20,}|eyJwYXlsb2Fk[A-Za-z0-9+/]{20,})={0,2}(?![A-Za-z0-9+/=])"
)
_SLACK_TOKEN = re.compile(r"(?<![\w-])(?:xox[a-z]-[A-Za-z0-9%-]{10,}|xapp-\d-[A-Za-z0-9-]{10,})")
_WEBHOOK = re.compile(
    r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/|https://(?:[\w-]+\.)?discord(?:app)?\.com/api/"
    r"webhooks/\d+/|https://[\w.-]*webhook\.office\.com/webhookb2/|https://outlook\.office(?:365)?\.com/webhook/|"
    r"https://api\.telegram\.org/(?:file/)?bot)[A-Za-z0-9/_:@%.~-]+"
)
_LLM_KEY = re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}")
_GITHUB_TOKEN = re.compile(r"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# JWE (five parts, the second empty for direct encryption) and JWS with any payload: the header is what
# marks them, a base64url JSON object naming an algorithm.
_JOSE = re.compile(r"(?<![\w-])(eyJ[A-Za-z0-9_-]{10,})(?:\.[A-Za-z0-9_-]*){2,4}")
_BEARER = re.compile(r"(?<![\w-])((?i:bearer)[ \t]+)([A-Za-z0-9\-._~+/]{16,}=*)")
_URL_CREDENTIALS = re.compile(r"""(\b[A-Za-z][A-Za-z0-9+.\-]{0,30}://[^/\s:@"'<>]{0,256}:)([^/\s"'<>]{1,256})(@)""")
_DOCKER_LOGIN_PASSWORD = re.compile(r"(\blogin\b[^\n]{0,200}?[ \t]-p[ \t]*)([^\s\"']+)")
_XML_ELEMENT = re.compile(r"<(?P<tag>[A-Za-z_][\w:.\-]{0,80})(?:\s[^<>]*)?>(?P<value>[^<]+)</(?P=tag)\s*>")
_SSM_TEXT_SECURE = re.compile(r"(\tSecureString\t)([^\t\r\n]+)")
# A .netrc entry on one line ("machine h login u password p"), or its "password p" line.
_NETRC_ENTRY = re.compile(
    r"\b(?:machine[ \t]+\S+|default)[ \t]+(?:login[ \t]+\S+[ \t]+)?password[ \t]|^[ \t]*password[ \t]"
)
_NETRC_PASSWORD = re.compile(r"((?:^|\\n|[ \t])(?:password|passwd)[ \t]+)([^\s=:\"'\\]+)")
# host:port:database:user:password
_PGPASS = re.compile(
    r"(?<![\w.:/-])((?:\*|localhost|[\w-]+(?:\.[\w-]+)+):(?:\d{2,5}|\*):[^\s:\"']+:[^\s:\"']+:)([^\s\"'\\]+)"
)
_OPENSSL_PASS = re.compile(r"(\bpass:)(\S+)")
_DEFINE = re.compile(r"""(\bdefine\(\s*['"](\w+)['"]\s*,\s*['"])([^'"]+)""")
_BASE64_BLOB = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{16,}={0,2}(?![A-Za-z0-9+/=_-])")

# Command-line tools and the options whose value is a secret: how the value is written ("next" word,
# "glued" to the option, "user:secret" / "user%secret" after the separator, the "last" word).
_COMMAND_OPTIONS: dict[str, dict[str, str]] = {
    "curl": {"-u": "after:", "--user": "after:", "-U": "after:", "--proxy-user": "after:"},
    "mysql": {"-p": "glued"},
    "mysqldump": {"-p": "glued"},
    "mysqladmin": {"-p": "glued"},
    "mariadb": {"-p": "glued"},
    "sshpass": {"-p": "next"},
    "redis-cli": {"-a": "next"},
    "ldapsearch": {"-w": "next"},
    "ldapmodify": {"-w": "next"},
    "ldapadd": {"-w": "next"},
    "ldapdelete": {"-w": "next"},
    "sqlcmd": {"-P": "next"},
    "bcp": {"-P": "next"},
    "smbclient": {"-U": "after%", "--user": "after%"},
    "keytool": {"-storepass": "next", "-keypass": "next", "-srcstorepass": "next", "-deststorepass": "next"},
    # htpasswd -b [-c] file user password
    "htpasswd": {"-b": "third"},
    "rabbitmqctl": {"add_user": "second", "change_password": "second"},
}
_COMMAND = re.compile(r"(?<![\w.-])(?:[\w./-]*/)?(" + "|".join(map(re.escape, _COMMAND_OPTIONS)) + r")(?=[ \t])")
_WORD = re.compile(r"""(?:'[^']*'|"[^"]*"|[^\s'"|;&])+""")


def mixed_enough(value: str) -> bool:
    """Random keys mix cases and digits; words, host names and hex digests do not."""
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() or c in "+/" for c in value)
    )


def _keep_if_plain(match: re.Match[str]) -> str:
    return REDACTED if mixed_enough(match.group()) else match.group()


def _redact_aws_key_ids(text: str) -> str:
    text, found = _AWS_KEY_ID.subn(REDACTED, text)
    if found:
        # Text output (``--output text``) drops the keys; the secret key is the 40-character field that
        # sits on the same line as its key id.
        text = _BASE64_40.sub(_keep_if_plain, text)
    return text


def mask(value: str) -> str:
    """The replacement for a secret value; an auth scheme in front of it stays readable."""
    if not value.replace(REDACTED, ""):
        return value  # empty, or redacted already
    scheme = AUTH_SCHEME.match(value)
    if scheme and scheme.end() < len(value):
        return value[: scheme.end()] + REDACTED
    return REDACTED


def _redact_xml(match: re.Match[str]) -> str:
    if not is_sensitive_key(match["tag"]):
        return match.group()
    start, end = match.span("value")
    offset = match.start()
    whole = match.group()
    return whole[: start - offset] + mask(match["value"]) + whole[end - offset :]


def _jose(match: re.Match[str]) -> str:
    header = decode_base64(match[1], urlsafe=True)
    return REDACTED if header is not None and ('"alg"' in header or '"enc"' in header) else match.group()


def decode_base64(value: str, *, urlsafe: bool = False) -> str | None:
    """``value`` decoded as base64 text, or None when it is not base64 of UTF-8 text."""
    try:
        if urlsafe:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        else:
            raw = base64.b64decode(value, validate=True)
        return raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        if end > start and REDACTED not in text[start:end]:
            text = text[:start] + REDACTED + text[end:]
    return text


def _unquoted(word: str, start: int) -> tuple[int, int]:
    """The span of ``word`` (found at ``start``) without the quotes around it."""
    end = start + len(word)
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return start + 1, end - 1
    return start, end


def _redact_commands(text: str) -> str:
    spans: list[tuple[int, int]] = []
    for command in _COMMAND.finditer(text):
        options = _COMMAND_OPTIONS[command[1]]
        words = list(_WORD.finditer(text, command.end()))
        for index, word in enumerate(words):
            value = word.group()
            for option, how in options.items():
                if how == "glued" and value.startswith(option) and len(value) > len(option):
                    spans.append(_unquoted(value[len(option) :], word.start() + len(option)))
                elif value == option and index + 1 < len(words):
                    after = words[index + 1]
                    if how == "next":
                        spans.append(_unquoted(after.group(), after.start()))
                    elif how.startswith("after"):
                        start, end = _unquoted(after.group(), after.start())
                        cut = text.find(how[-1], start, end)
                        if cut != -1:
                            spans.append((cut + 1, end))
                    elif how == "second" and index + 2 < len(words):
                        spans.append(_unquoted(words[index + 2].group(), words[index + 2].start()))
                    elif how == "third":
                        positional = [w for w in words[index + 1 :] if not w.group().startswith("-")]
                        if len(positional) >= 3:
                            spans.append(_unquoted(positional[2].group(), positional[2].start()))
                elif how.startswith("after") and len(option) == 2 and value.startswith(option) and len(value) > 2:
                    # curl -uuser:secret
                    cut = value.find(how[-1])
                    if cut != -1:
                        spans.append(_unquoted(value[cut + 1 :], word.start() + cut + 1))
    return _replace_spans(text, spans)


def _redact_netrc(text: str) -> str:
    if not _NETRC_ENTRY.search(text):
        return text
    return _NETRC_PASSWORD.sub(rf"\g<1>{REDACTED}", text)


def _redact_define(match: re.Match[str]) -> str:
    return match[1] + REDACTED if is_sensitive_key(match[2]) else match.group()


def _base64_secret(match: re.Match[str]) -> str:
    """Base64 that decodes to text holding a secret (a Kubernetes secret's data, a ``.dockerconfigjson``)."""
    value = match.group()
    if len(value) % 4 or REDACTED in value:
        return value
    decoded = decode_base64(value)
    if decoded is None or (not decoded.isprintable() and not decoded.replace("\n", "").isprintable()):
        return value
    from engine.redaction.stream import redact_text

    return REDACTED if redact_text(decoded) != decoded else value


def _sub(pattern: re.Pattern[str], replacement: str | Callable[[re.Match[str]], str]) -> Callable[[str], str]:
    return lambda text: pattern.sub(replacement, text)


SHAPE_RULES: tuple[tuple[tuple[str, ...], Callable[[str], str]], ...] = (
    (("akia", "asia", "abia", "acca"), _redact_aws_key_ids),
    (("b3jpz2lu", "zxivyxdz"), _sub(_SESSION_TOKEN, REDACTED)),
    (("qvdtom", "eyjwyxlsb2fk"), _sub(_ECR_TOKEN, REDACTED)),
    (("xox", "xapp-"), _sub(_SLACK_TOKEN, REDACTED)),
    (("hooks.slack.com", "/webhooks/", "webhook", "api.telegram.org"), _sub(_WEBHOOK, rf"\g<1>{REDACTED}")),
    (("sk-",), _sub(_LLM_KEY, _keep_if_plain)),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), _sub(_GITHUB_TOKEN, REDACTED)),
    (("eyj",), _sub(_JWT, REDACTED)),
    (("eyj",), _sub(_JOSE, _jose)),
    (("bearer",), _sub(_BEARER, lambda m: m[1] + REDACTED if any(c.isdigit() for c in m[2]) else m.group())),
    (("://",), _sub(_URL_CREDENTIALS, rf"\g<1>{REDACTED}\g<3>")),
    (("login",), _sub(_DOCKER_LOGIN_PASSWORD, rf"\g<1>{REDACTED}")),
    (("</",), _sub(_XML_ELEMENT, _redact_xml)),
    (("securestring",), _sub(_SSM_TEXT_SECURE, rf"\g<1>{REDACTED}")),
    (tuple(_COMMAND_OPTIONS), _redact_commands),
    (("machine", "default", "login", "password", "account"), _redact_netrc),
    (("pgpass", ":*:", ":5432:", ":3306:", ":1433:", ":1521:", ":6432:", ":5439:"), _sub(_PGPASS, rf"\g<1>{REDACTED}")),
    (("pass:",), _sub(_OPENSSL_PASS, rf"\g<1>{REDACTED}")),
    (("define(",), _sub(_DEFINE, _redact_define)),
)
add_triggers(t for triggers, _ in SHAPE_RULES for t in triggers)


def redact_shapes(body: str, found: frozenset[str]) -> str:
    """``body`` through every rule one of whose triggers is in ``found`` (``gate.triggers_in`` of the line)."""
    if found:
        for triggers, rule in SHAPE_RULES:
            if not found.isdisjoint(triggers):
                body = rule(body)
    return body


def redact_base64_secrets(body: str) -> str:
    return _BASE64_BLOB.sub(_base64_secret, body)
