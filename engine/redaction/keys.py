"""Which keys, labels, flags and variable names hold secrets."""

from __future__ import annotations

import re
from functools import lru_cache

_NON_ALNUM = re.compile(r"[^a-z0-9]+")

# Error codes and exception names mention secrets without holding one: "NoCredentialsError: Unable to
# locate credentials", "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist".
_ERROR_NAME = re.compile(
    r"^(?:missing|invalid|expired|malformed|unrecognized|incomplete)|"
    r"(?:error|errors|exception|exceptions|failure|failures|fault|violation|mismatch|notfound|denied)$"
)

# Checked before the identifier suffixes: these end in "id" or name a signature yet are credentials.
_ALWAYS_SECRET_KEY = re.compile(r"(?:accesskeyid|amzsignature|amzcredential|amzsecuritytoken)$")

# A secret word followed by one of these names something about a secret (its ARN, age, policy), not the
# secret itself: "SecretArn", "PasswordLastUsed", "MinimumPasswordLength", "AWS_SHARED_CREDENTIALS_FILE".
# Ciphertext is what KMS returns instead of the secret ("PrivateKeyCiphertextBlob").
_IDENTIFIER_SUFFIX = re.compile(
    r"(?:arn|arns|id|ids|name|names|list|status|stages|type|types|state|date|time|timestamp|lastused|"
    r"lastchanged|changed|created|age|length|size|policy|policies|enabled|required|prevention|expiration|"
    r"expiry|expires|expiresat|rotation|rules|source|origin|provider|format|spec|usage|fingerprint|location|"
    r"count|version|versions|path|file|dir|region|mode|config|configuration|settings|strategy|url|uri|prompt|"
    r"hint|reference|ref|selector|selectors|metadata|kind|algorithm|algorithms|validity|units|manager|"
    r"ciphertext|ciphertextblob)$"
)

# Something taken from a secret ("SubjectFromWebIdentityToken") or the public half of a key pair
# ("PublicKeyMaterial") is not the secret.
_DERIVED = re.compile(r"from[a-z]*(?:token|secret|password|credential)s?$|publickey")

_SECRET_WORD = re.compile(r"password|passwd|passphrase|secret|privatekey|keymaterial|credential|plaintext")
# Only as the last word: "AccessKey" is a secret, "AccessKeysPerUser" (a quota) is not.
_SECRET_SUFFIX = re.compile(
    r"(?:token|tokens|cookie|cookies|auth|authorization|pwd|accesskey|apikey|apikeyvalue|presharedkey|"
    r"connectionstring|psk|(?<!by)(?<!com)(?<!sur)pass)$"
)

# Tokens that page, order, lock or deduplicate requests, or name a handle: anyone holding them can do
# nothing they could not already do, and hiding them breaks pagination and optimistic locking (WAF's
# LockToken) in the output. Grant tokens are documented by KMS as not secret; SES verification tokens are
# published in DNS, and so are DKIM tokens.
_NOT_SECRET_TOKEN = re.compile(
    r"(?:next|continuation|client|idempotency|pagination|paging|starting|start|page|sync|sequence|forward|"
    r"backward|change|resume|conflict|request|cursor|previous|prev|marker|expired|invalid|missing|malformed|"
    r"deduplication|cancellation|lock|creation|registration|update|copyproduct|provisioning|verification|"
    r"grant|purchase|workunit|export|import|task|callback|query|batch|queue|rotation|replay|nextlock|dkim)tokens?$"
)


def normalize(name: str) -> str:
    """``SecretAccessKey``, ``secret_access_key`` and ``--secret-access-key`` all become one word."""
    return _NON_ALNUM.sub("", name.lower())


def looks_secret(name: str) -> bool:
    """The name rules alone, before botocore's enum table (which is built from them)."""
    key = normalize(name)
    if not key or _ERROR_NAME.search(key) or _DERIVED.search(key):
        return False
    if _ALWAYS_SECRET_KEY.search(key):
        return True
    if _IDENTIFIER_SUFFIX.search(key):
        return False
    if _SECRET_WORD.search(key):
        return True
    return bool(_SECRET_SUFFIX.search(key)) and not _NOT_SECRET_TOKEN.search(key)


def _normalized_tables() -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    from engine.redaction.enum_data import ENUM_VALUES, NEVER_TEXT

    enums: dict[str, frozenset[str]] = {}
    for name, values in ENUM_VALUES.items():
        enums[normalize(name)] = enums.get(normalize(name), frozenset()) | values
    return enums, frozenset(normalize(name) for name in NEVER_TEXT)


_ENUM_VALUES, _NEVER_TEXT = _normalized_tables()


@lru_cache(maxsize=8192)
def is_sensitive_key(name: str) -> bool:
    """Whether a value stored under ``name`` (JSON key, variable, flag, XML tag, in any case or separator
    style) is a secret: ``SecretAccessKey``, ``aws_session_token``, ``--master-user-password`` are;
    ``SecretArn``, ``NextToken``, ``PasswordLastUsed`` are not, and neither are the names botocore's models
    only ever give numbers or booleans (``maxTokens``, ``AllowUsersToChangePassword``)."""
    return looks_secret(name) and normalize(name) not in _NEVER_TEXT


def is_enum_value(name: str, value: str) -> bool:
    """Whether ``value`` is one of the values botocore's models enumerate for a member called ``name``:
    ``HttpTokens`` is ``required``, not a secret."""
    values = _ENUM_VALUES.get(normalize(name))
    return values is not None and value.strip() in values


# Keys that name an entry and keys that hold its value, in the name/value lists AWS uses for environment
# variables (ECS, CodeBuild), stack parameters and option settings: the value is secret when the name is.
PAIR_NAME_KEYS = frozenset(
    {"name", "key", "parametername", "parameterkey", "optionname", "variablename", "settingname", "attributename"}
)
PAIR_VALUE_KEYS = frozenset({"value", "parametervalue", "optionvalue", "settingvalue", "attributevalue"})
_MAX_PAIR_NAME = 128


def names_secret(name: str) -> bool:
    return len(name) <= _MAX_PAIR_NAME and is_sensitive_key(name)
