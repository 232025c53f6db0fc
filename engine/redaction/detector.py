"""Secret shapes in free text, from a maintained ruleset: Yelp's ``detect-secrets``.

Every regex plugin of ``detect-secrets`` (its ``denylist`` patterns: AWS key ids, GitHub, GitLab, Slack,
Stripe, SendGrid, PyPI, npm, Discord, Telegram, JWTs, Azure storage keys, URL credentials and more) is taken
from the installed library at first use, never copied here, and compiled into one scanner. Each pattern is
run only on lines holding one of its literals (read from the pattern itself), so a line with no candidate
costs one lookup in ``gate``. Left out: the entropy and keyword plugins (they flag identifiers, hashes and prose: a
quarter of the values in the aws CLI's example outputs) and public IP addresses, which are not secrets.
Private key headers are handled as blocks by the stream redactor, and "keyword = value" patterns by the key
and label rules.

``SUPPLEMENT`` lists the issuers the library does not know yet, by their documented prefix and body; a test
fails when the library learns one, so that the entry goes.

A match is widened to the whole token it sits in: the library's patterns often stop at a minimum length
(``sk_live_`` and 24 characters), and the rest of a longer key is as secret as its start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]

from engine.redaction.gate import add_triggers, triggers_in

REDACTED = "[REDACTED]"

# Plugins whose findings are not secrets to redact from command output, or are handled elsewhere.
_LEFT_OUT = frozenset({"IPPublicDetector", "PrivateKeyDetector"})
# The library's "keyword = value" patterns (IBM, Cloudant, SoftLayer) start like this. The key and label
# rules already read every such assignment, and these patterns backtrack quadratically over long runs of
# blanks, so they are left out too.
_KEYWORD_ASSIGNMENT = "(?:(?<=\\W)|(?<=^))"

# Issuers ``detect-secrets`` has no plugin for (yet): each prefix is the issuer's own, documented format.
SUPPLEMENT: tuple[tuple[str, str], ...] = (
    ("Slack client, cookie and refresh tokens", r"xox[cdeu]-[A-Za-z0-9%-]{20,}"),
    ("Amazon MWS", r"amzn\.mws\.[0-9a-f-]{36}"),
    ("Atlassian and Bitbucket", r"AT(?:ATT|CTT|BB)[A-Za-z0-9_=+/-]{24,}"),
    ("Docker Hub", r"dckr_pat_[A-Za-z0-9_-]{20,}"),
    ("Buildkite, CircleCI", r"bkua_[a-f0-9]{40}|CCIPAT_[A-Za-z0-9]{20,}_[a-f0-9]{40}"),
    ("Terraform Cloud", r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,}"),
    ("Pulumi, Doppler", r"pul-[a-f0-9]{40}|dp\.(?:st|pt|ct|sa|scim|audit)\.[A-Za-z0-9_.-]{40,}"),
    ("HashiCorp Vault", r"hv[sbr]\.[A-Za-z0-9_-]{24,}"),
    ("age", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    ("RubyGems, Clojars", r"rubygems_[a-f0-9]{48}|CLOJARS_[a-f0-9]{60}"),
    ("Stripe webhook secrets, test and restricted keys", r"whsec_[A-Za-z0-9]{24,}|[sr]k_test_[A-Za-z0-9]{24,}"),
    ("Mailgun, Brevo", r"key-[a-f0-9]{32}|xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
    ("Square access tokens, Adyen", r"EAAA[A-Za-z0-9_-]{60,}|AQE[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{30,}"),
    ("Shopify", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    ("DigitalOcean", r"do[opr]_v1_[a-f0-9]{64}"),
    ("Databricks", r"dapi[a-f0-9]{32}(?:-\d)?"),
    ("Azure AD client secrets", r"[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    ("Google OAuth", r"GOCSPX-[A-Za-z0-9_-]{28}|ya29\.[A-Za-z0-9_-]{30,}|1//0[A-Za-z0-9_-]{40,}"),
    ("Google API keys", r"AIza[A-Za-z0-9_-]{35}"),
    ("Alibaba Cloud, Tencent Cloud", r"LTAI[A-Za-z0-9]{16,24}|AKID[A-Za-z0-9]{32}"),
    ("Heroku, Fly.io, Supabase", r"HRKU-[A-Za-z0-9_-]{40,}|fo1_[A-Za-z0-9_-]{39,}|sbp_[a-f0-9]{40}"),
    (
        "PlanetScale, Cloudflare origin CA",
        r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,}|v1\.0-[a-f0-9]{24}-[a-f0-9]{146}",
    ),
    ("New Relic, Grafana", r"NRAK-[A-Z0-9]{27}|glc_[A-Za-z0-9+/]{32,}={0,2}|glsa_[A-Za-z0-9]{32}_[a-f0-9]{8}"),
    (
        "Sentry, Postman, Linear",
        r"sntry[su]_[A-Za-z0-9+/=_-]{60,}|PMAK-[a-f0-9]{24}-[a-f0-9]{34}|lin_api_[A-Za-z0-9]{40}",
    ),
    ("Notion, Figma, Dropbox", r"ntn_[A-Za-z0-9]{40,}|figd_[A-Za-z0-9_-]{40,}|sl\.[A-Za-z0-9_-]{130,}"),
    ("Contentful, Airtable", r"CFPAT-[A-Za-z0-9_-]{43}|pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    ("1Password, Prefect, ReadMe", r"ops_eyJ[A-Za-z0-9+/=_-]{100,}|pnu_[A-Za-z0-9]{36}|rdme_[a-f0-9]{70}"),
    ("Typeform, Adafruit", r"tfp_[A-Za-z0-9_-]{40,}_[A-Za-z0-9_-]{10,}|aio_[A-Za-z0-9]{28}"),
    ("Groq, Perplexity, Replicate", r"gsk_[A-Za-z0-9]{48,}|pplx-[A-Za-z0-9]{48}|r8_[A-Za-z0-9]{37}"),
    ("Hugging Face, npm", r"hf_[A-Za-z0-9]{34,}|npm_[A-Za-z0-9]{36}"),
    ("LLM API keys", r"sk-(?:proj|ant-[a-z]{3}\d\d|svcacct|admin)-[A-Za-z0-9_-]{40,}"),
)

# A token runs over these characters; a match is widened to the whole run (URL escapes included).
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+/=%.~]*")
_TOKEN_CHARS_BACK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=%.~")
# Before a token: not the middle of another word.
_BOUNDARY = r"(?<![A-Za-z0-9_])"
_MIN_TRIGGER = 3


@dataclass(frozen=True)
class Rule:
    source: str  # the plugin, or the SUPPLEMENT entry
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]  # lowercase literals one of which every match holds; () when none is known
    # Without those, shorter literals as written ("AP", "Q~", "."), one of which every match holds.
    exact: tuple[str, ...] = ()


def _literal_runs(parsed: sre_parse.SubPattern) -> list[set[str]]:
    """The runs of literal text at the top level of a parsed pattern, each as the set of strings it can be
    (``(?:r|s)k_live_`` is ``{"rk_live_", "sk_live_"}``)."""
    runs: list[set[str]] = []
    current: set[str] = {""}

    def close() -> None:
        nonlocal current
        if current != {""}:
            runs.append(current)
        current = {""}

    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            current = {prefix + chr(arg) for prefix in current}
            continue
        options = _literal_options(op, arg)
        if options is not None and len(current) * len(options) <= 32:
            current = {prefix + option for prefix in current for option in options}
        else:
            close()
    close()
    return runs


def _literal_options(op: object, arg: object) -> set[str] | None:
    """The strings a group or class can match, when it can only match a few fixed strings."""
    if op is sre_constants.IN and all(kind is sre_constants.LITERAL for kind, _ in arg):  # type: ignore[union-attr]
        return {chr(value) for _, value in arg}  # type: ignore[union-attr]
    if op is sre_constants.SUBPATTERN:
        inner = arg[-1]  # type: ignore[index]
        runs = _literal_runs(inner)
        if len(runs) == 1 and len(inner) == sum(1 for _ in inner) and _is_pure_literal(inner):
            return runs[0]
        if len(inner) == 1 and inner[0][0] is sre_constants.BRANCH:
            return _branch_options(inner[0][1])
    if op is sre_constants.BRANCH:
        return _branch_options(arg)
    return None


def _is_pure_literal(parsed: sre_parse.SubPattern) -> bool:
    return all(op is sre_constants.LITERAL or _literal_options(op, arg) is not None for op, arg in parsed)


def _branch_options(arg: object) -> set[str] | None:
    options: set[str] = set()
    for branch in arg[1]:  # type: ignore[index]
        if not _is_pure_literal(branch):
            return None
        runs = _literal_runs(branch)
        options |= runs[0] if runs else {""}
    return options


def _best_run(pattern: re.Pattern[str], shortest: int) -> set[str]:
    try:
        runs = _literal_runs(sre_parse.parse(pattern.pattern, pattern.flags & ~re.UNICODE))
    except (re.error, TypeError, IndexError):
        return set()
    usable = [run for run in runs if min(len(option) for option in run) >= shortest]
    return max(usable, key=lambda run: min(len(option) for option in run)) if usable else set()


def triggers_of(pattern: re.Pattern[str]) -> tuple[str, ...]:
    """Lowercase literals, one of which is in every match of ``pattern``: the longest run it must contain."""
    return tuple(sorted({option.lower() for option in _best_run(pattern, _MIN_TRIGGER)}))


def exact_triggers_of(pattern: re.Pattern[str]) -> tuple[str, ...]:
    """For a pattern with no usable trigger: its longest literal run as written, however short."""
    if pattern.flags & re.IGNORECASE:
        return ()
    return tuple(sorted(_best_run(pattern, 1)))


def _rule(source: str, pattern: re.Pattern[str], written: re.Pattern[str]) -> Rule:
    triggers = triggers_of(written)
    return Rule(source, pattern, triggers, () if triggers else exact_triggers_of(written))


def _compile(source: str, flags: int) -> re.Pattern[str]:
    return re.compile(_BOUNDARY + "(?:" + source + ")", flags & ~re.UNICODE)


def _library_rules() -> list[Rule]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    rules: list[Rule] = []
    for plugin in sorted(get_mapping_from_secret_type_to_class().values(), key=lambda cls: cls.__name__):
        if not issubclass(plugin, RegexBasedDetector) or plugin.__name__ in _LEFT_OUT:
            continue
        for denied in plugin.denylist:
            if denied.pattern.startswith(_KEYWORD_ASSIGNMENT):
                continue
            rules.append(_rule(plugin.__name__, _compile(denied.pattern, denied.flags), denied))
    return rules


def _alternatives(source: str) -> list[str]:
    """``source`` split at its top-level ``|``: each alternative gets its own literals to trigger on."""
    parts: list[str] = []
    depth = 0
    start = 0
    escaped = in_class = False
    for index, char in enumerate(source):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(source[start:index])
            start = index + 1
    parts.append(source[start:])
    return parts


def _supplement_rules() -> list[Rule]:
    return [
        _rule(name, _compile(alternative, 0), re.compile(alternative))
        for name, source in SUPPLEMENT
        for alternative in _alternatives(source)
    ]


@cache
def rules() -> tuple[Rule, ...]:
    """The library's rules and the supplement, compiled once per process."""
    return (*_library_rules(), *_supplement_rules())


@cache
def _scanner() -> tuple[dict[str, tuple[Rule, ...]], tuple[Rule, ...]]:
    by_trigger: dict[str, list[Rule]] = {}
    always: list[Rule] = []
    for rule in rules():
        if not rule.triggers:
            always.append(rule)
        for trigger in rule.triggers:
            by_trigger.setdefault(trigger, []).append(rule)
    add_triggers(by_trigger)
    return {t: tuple(r) for t, r in by_trigger.items()}, tuple(always)


def prepare() -> None:
    """Compile the rules and register their triggers (done on first use otherwise)."""
    _scanner()


def _after_separator(text: str, index: int) -> bool:
    return index > 0 and (text[index - 1] in ":=@\"'" or text[index - 1].isspace())


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and text[start - 1] in _TOKEN_CHARS_BACK:
        start -= 1
    end = max(end, _TOKEN_CHARS.match(text, end).end())
    # A sentence's full stop or a URL's trailing slash is not part of the token.
    while end > start and text[end - 1] in "./":
        end -= 1
    return start, end


def secret_spans(text: str, found: frozenset[str] | None = None) -> list[tuple[int, int]]:
    """Spans of ``text`` holding a secret some rule recognises, widened to whole tokens, merged.

    ``found`` is ``gate.triggers_in(text.lower())`` when the caller has it already."""
    by_trigger, always = _scanner()
    if found is None:
        found = triggers_in(text.lower())
    candidates = [rule for rule in always if not rule.exact or any(word in text for word in rule.exact)]
    seen: set[int] = set()
    for word in found:
        for rule in by_trigger.get(word, ()):
            if id(rule) not in seen:
                seen.add(id(rule))
                candidates.append(rule)
    spans: list[tuple[int, int]] = []
    for rule in candidates:
        for match in rule.pattern.finditer(text):
            # A first group right after a separator (a password after "user:", a token after "=") is the
            # secret part; otherwise the group is part of the token, and the whole match is the secret.
            group = 1 if rule.pattern.groups and match.group(1) and _after_separator(text, match.start(1)) else 0
            start, end = match.span(group)
            if end - start < 4 or REDACTED in text[start:end]:
                continue
            spans.append(_widen(text, start, end) if group == 0 else (start, _widen(text, end, end)[1]))
    return _merged(spans)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact_detected(text: str, found: frozenset[str] | None = None) -> str:
    """``text`` with every span ``secret_spans`` finds replaced."""
    spans = secret_spans(text, found)
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end in spans:
        pieces.append(text[cursor:start] + REDACTED)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
