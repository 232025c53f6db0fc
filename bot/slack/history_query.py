"""``/cloudops history``: the query a person types, who may see what, and one page of the answer.

Query syntax (any order; filters may repeat, list filters also take ``a,b``)::

    [words to search] [user:me|user:<@U123>|user:U123|user:name] [status:failed] [risk:destructive]
    [service:ec2] [since:7d] [channel:here|channel:#ops|channel:<#C123|ops>]

Words are searched with the store's text search (best match first); without words the newest records come
first. ``user:name`` without ``@`` is a command-line requester's name, matched as recorded. A word with a
colon that is not one of the filters is refused rather than searched, so a mistyped filter never silently
widens the answer; put such a word in quotes to search for it.

Who sees what
-------------
A record from Slack is shown only to people who are members of the channel it came from. Membership comes
from ``users.conversations`` for the person asking; if Slack cannot tell (an error, a missing scope), only
records from the channel where the command was typed are shown. Records made on the command line belong to
no channel; they are shown only to people the policy names as approvers (directly or through an approver
user group), and only when membership could be read.

The stores cannot select "no channel" in a filter, so command-line records are read without the channel
condition and picked out here (``_command_line_records``). That search is bounded: a command-line record
with more than a couple of hundred newer records ahead of it (or, in a text search, ranked below a few
pages' worth of better matches) that the person may not see can be left out of an approver's answer.
Leaving out is the safe side: nothing is ever shown that the person may not see.

Paging
------
The page buttons carry the query text, the page number and the moment of the first search (``as_of``), so
every page is cut from the same set of records however many are added meanwhile. A query too long for a
button value is kept in this process under a short random key instead (see ``SavedQueries``).
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.errors import SlackApiError

from bot.slack.blocks.history import history_help_message, history_message
from bot.slack.blocks.limits import BUTTON_VALUE_MAX
from bot.slack.blocks.message import RenderedMessage
from bot.slack.blocks.mrkdwn import code_span
from bot.slack.blocks.notices import ephemeral
from bot.slack.context import BotContext
from engine.errors import StoreError
from engine.history.filters import RecordFilter, parse_time_bound
from engine.history.qdrant_store import MAX_LIMIT
from engine.history.records import ExecutionRecord, RecordStatus
from engine.history.store import HistoryStore
from engine.risk import Risk

logger = logging.getLogger(__name__)

PAGE_SIZE = 10
# Stores answer at most MAX_LIMIT records per call and have no offset: page n asks for (n + 1) pages and one
# more record (to know whether there is a next page), so this is the last page that can be reached.
LAST_PAGE = (MAX_LIMIT - 1) // PAGE_SIZE - 1
# What Slack sends as channel_name where a conversation has no name of its own.
NAMELESS_CHANNEL_NAMES = frozenset({"directmessage", "privategroup", "mpdm"})
FILTER_KEYS = ("user", "status", "risk", "service", "since", "channel")
QUERY_TEXT_MAX = 4_000

# users.conversations pages: 999 channels each; 10 pages cover anyone but the most prolific joiner, and the
# channels read so far are still ones the person is in, so stopping early only narrows the answer.
MEMBERSHIP_PAGE_LIMIT = 999
MEMBERSHIP_MAX_PAGES = 10
MEMBERSHIP_TYPES = "public_channel,private_channel,mpim,im"

# Records without a channel cannot be selected by the stores' filters, so they are read without the
# channel condition and picked out here: windows of at least this many of the newest records...
COMMAND_LINE_WINDOW = 50
# ...at most this many windows...
COMMAND_LINE_SCANS = 4
# ...or, for a text search, this many times the records needed.
COMMAND_LINE_SEARCH_DEPTH = 4

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_SLACK_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,20}$")
_USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>$")
_CHANNEL_MENTION = re.compile(r"^<#([CGD][A-Z0-9]{2,20})(?:\|([^>]*))?>$")
_SERVICE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
_COMMAND_LINE_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
# A quoted phrase (straight or the curly quotes Slack clients type), or a run of non-space characters.
_TOKEN = re.compile(r"[\"“”]([^\"“”]*)[\"“”]|(\S+)")
_FILTER_WORD = re.compile(r"^([A-Za-z_]{1,20}):(.*)$", re.DOTALL)


class QueryError(ValueError):
    """A query that cannot be run as typed. The message is mrkdwn, with the person's words as inline code."""


def _valid_values(values: Iterable[str]) -> str:
    return ", ".join(code_span(value) for value in values)


# ---------------------------------------------------------------------------------------------------------
# The parsed query


class HistoryQuery(BaseModel):
    """What ``/cloudops history …`` asks for, before it is narrowed to what the person may see."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(default="", max_length=QUERY_TEXT_MAX)
    user: str | None = None
    status: list[RecordStatus] = Field(default_factory=list)
    risk: list[Risk] = Field(default_factory=list)
    service: list[str] = Field(default_factory=list)
    channel_ids: list[str] = Field(default_factory=list)
    channel_names: list[str] = Field(default_factory=list, description="`#name` forms, resolved per person.")
    since: datetime | None = None
    as_of: datetime = Field(description="Only records created up to this moment: every page cuts the same set.")

    @property
    def has_channel_filter(self) -> bool:
        return bool(self.channel_ids or self.channel_names)

    def record_filter(self, channels: Iterable[str] = ()) -> RecordFilter:
        return RecordFilter(
            user=self.user,
            status=self.status,
            risk=self.risk,
            service=self.service,
            channel=sorted(set(channels)),
            since=self.since,
            until=self.as_of,
        )

    def describe(self) -> str:
        """The query as mrkdwn, for the top of the answer: what was searched, which filters applied."""
        parts: list[str] = []
        if self.text:
            parts.append(f"matching {code_span(self.text, 200)}")
        if self.user:
            parts.append(f"requested by {_person(self.user)}")
        if self.status:
            parts.append("status " + ", ".join(s.value.replace("_", " ") for s in self.status))
        if self.risk:
            parts.append("risk " + ", ".join(r.label for r in self.risk))
        if self.service:
            parts.append("service " + ", ".join(code_span(s, 64) for s in self.service))
        channels = [f"<#{c}>" for c in self.channel_ids] + [code_span("#" + n, 82) for n in self.channel_names]
        if channels:
            parts.append("in " + ", ".join(channels))
        if self.since:
            parts.append(f"since {self.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
        return "; ".join(parts)


def _person(user: str) -> str:
    return f"<@{user}>" if _SLACK_USER.fullmatch(user) else code_span(user, 100)


def parse_history_query(raw: str, *, requester: str, here: str, as_of: datetime) -> HistoryQuery:
    """``raw`` (the text after ``history``) as a query; ``QueryError`` naming the first problem found."""
    if len(raw) > QUERY_TEXT_MAX:
        raise QueryError(f"The query is {len(raw):,} characters long; at most {QUERY_TEXT_MAX:,} are searched.")
    words: list[str] = []
    fields: dict[str, Any] = {"status": [], "risk": [], "service": [], "channel_ids": [], "channel_names": []}
    for match in _TOKEN.finditer(raw):
        quoted, word = match.group(1), match.group(2)
        if quoted is not None:
            # Slack sends &, < and > escaped when the command escapes its text; a search wants the characters.
            words.append(html.unescape(quoted.strip()))
            continue
        filter_word = _FILTER_WORD.fullmatch(word)
        if filter_word is None:
            words.append(html.unescape(word))
            continue
        key, value = filter_word.group(1).lower(), filter_word.group(2)
        if key not in FILTER_KEYS:
            raise QueryError(
                f"Unknown filter {code_span(key + ':')} in {code_span(word)}. "
                f"Filters are {_valid_values(k + ':' for k in FILTER_KEYS)}. "
                "To search for a word with a colon in it, put it in double quotes."
            )
        if not value:
            raise QueryError(f"{code_span(word)} needs a value, e.g. {code_span(_EXAMPLES[key])}.")
        _add_filter(fields, key, value, requester=requester, here=here, as_of=as_of)
    text = " ".join(w for w in words if w)
    try:
        return HistoryQuery(text=text, as_of=as_of, **fields)
    except ValidationError as exc:  # only reachable through values the checks above let through
        raise QueryError(f"The query cannot be run: {exc.errors(include_url=False)[0]['msg']}.") from None


_EXAMPLES = {
    "user": "user:me",
    "status": "status:failed",
    "risk": "risk:destructive",
    "service": "service:ec2",
    "since": "since:7d",
    "channel": "channel:here",
}


def _add_filter(fields: dict[str, Any], key: str, value: str, *, requester: str, here: str, as_of: datetime) -> None:
    if key == "user":
        if "user" in fields:
            raise QueryError("Give `user:` once: a record has one requester.")
        fields["user"] = _user(value, requester)
    elif key == "since":
        if "since" in fields:
            raise QueryError("Give `since:` once.")
        fields["since"] = _since(value, as_of)
    elif key == "status":
        fields["status"] += [_choice(RecordStatus, "status", item, _STATUS_ALIASES) for item in _items(value)]
    elif key == "risk":
        fields["risk"] += [_choice(Risk, "risk", item, _RISK_ALIASES) for item in _items(value)]
    elif key == "service":
        for item in _items(value):
            service = item.lower()
            if not _SERVICE.fullmatch(service):
                raise QueryError(
                    f"{code_span('service:' + item)} is not a service name; use the AWS service as in the "
                    f"command, e.g. {code_span('service:ec2')} or {code_span('service:s3')}."
                )
            fields["service"].append(service)
    else:
        for item in _items(value):
            _add_channel(fields, item, here)


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


_STATUS_ALIASES = {"pending": RecordStatus.PENDING_APPROVAL, "awaiting_approval": RecordStatus.PENDING_APPROVAL}
_RISK_ALIASES = {"read": Risk.READ_ONLY, "readonly": Risk.READ_ONLY}


def _choice(enum: Any, what: str, item: str, aliases: dict[str, Any]) -> Any:
    word = item.lower().replace("-", "_")
    if word in aliases:
        return aliases[word]
    try:
        return enum(word)
    except ValueError:
        raise QueryError(
            f"{code_span(what + ':' + item)} is not a {what}. Valid values: {_valid_values(m.value for m in enum)}."
        ) from None


def _user(value: str, requester: str) -> str:
    if value.lower() == "me":
        return requester
    if mention := _USER_MENTION.fullmatch(value):
        return mention.group(1)
    if _SLACK_USER.fullmatch(value):
        return value
    if value.startswith("@"):
        raise QueryError(
            f"{code_span('user:' + value)} names a person by display name, which cannot be looked up here. "
            f"Pick the person from Slack's suggestions so the mention is sent as a link, or use "
            f"{code_span('user:me')} or their member id, e.g. {code_span('user:U0123ABCD')}."
        )
    if _COMMAND_LINE_USER.fullmatch(value):
        return value
    raise QueryError(
        f"{code_span('user:' + value)} is not a person. Use {code_span('user:me')}, a mention "
        f"({code_span('user:@name')} picked from the suggestions), a member id, or a command-line user name."
    )


def _since(value: str, as_of: datetime) -> datetime:
    try:
        since = parse_time_bound(value, now=as_of)
    except ValueError:
        raise QueryError(
            f"{code_span('since:' + value)} is not a time. Use a duration back from now, "
            f"{_valid_values(['30m', '24h', '7d', '2w'])}, or a date such as {code_span('2024-05-01')}."
        ) from None
    if since > as_of:
        raise QueryError(f"{code_span('since:' + value)} is in the future, so nothing can match.")
    return since


def _add_channel(fields: dict[str, Any], item: str, here: str) -> None:
    if item.lower() == "here":
        fields["channel_ids"].append(here)
        return
    if mention := _CHANNEL_MENTION.fullmatch(item):
        fields["channel_ids"].append(mention.group(1))
        return
    if _SLACK_CHANNEL.fullmatch(item):
        fields["channel_ids"].append(item)
        return
    name = item.removeprefix("#").lower()
    if not _CHANNEL_NAME.fullmatch(name):
        raise QueryError(
            f"{code_span('channel:' + item)} is not a channel. Use {code_span('channel:here')}, "
            f"{code_span('channel:#name')} or a channel picked from Slack's suggestions."
        )
    fields["channel_names"].append(name)


# ---------------------------------------------------------------------------------------------------------
# Who may see what


@dataclass(frozen=True)
class Audience:
    """What one person may see: records from ``channels``; command-line records when ``command_line``."""

    user: str
    here: str
    channels: frozenset[str]
    names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # channel name -> id
    command_line: bool = False
    membership_known: bool = True

    def may_see(self, record: ExecutionRecord) -> bool:
        if record.channel is None:
            return self.command_line
        return record.channel in self.channels

    @property
    def note(self) -> str | None:
        if self.membership_known:
            return None
        return (
            "Slack did not say which channels you are in, so only records from this channel are shown. "
            "Try again in a moment."
        )


async def audience_for(client: Any, bot: BotContext, *, user: str, here: str, here_name: str | None) -> Audience:
    """Who ``user`` is for the history: their channels (``users.conversations``) and approver standing.

    Fails closed: without an answer from Slack, the person sees only the channel they typed the command in.
    """
    names = {here_name.lower(): here} if here_name else {}
    channels = {here}
    try:
        cursor: str | None = None
        for _ in range(MEMBERSHIP_MAX_PAGES):
            answer = await client.users_conversations(
                user=user,
                types=MEMBERSHIP_TYPES,
                exclude_archived=False,
                limit=MEMBERSHIP_PAGE_LIMIT,
                cursor=cursor,
            )
            for channel in answer.get("channels") or []:
                channel_id = channel.get("id")
                if isinstance(channel_id, str):
                    channels.add(channel_id)
                    if isinstance(channel.get("name"), str):
                        names[channel["name"].lower()] = channel_id
            cursor = (answer.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                break
        else:
            logger.warning("%s is in more channels than are read; the history searches the first ones", user)
    except Exception as exc:
        # Whatever went wrong (an error answer, a missing scope, the network), membership is unknown.
        logger.warning("channel membership of %s unknown (%s); history limited to %s", user, _why(exc), here)
        return Audience(user=user, here=here, channels=frozenset({here}), names=names, membership_known=False)
    return Audience(
        user=user,
        here=here,
        channels=frozenset(channels),
        names=names,
        command_line=await _is_approver(client, bot, user),
    )


async def _is_approver(client: Any, bot: BotContext, user: str) -> bool:
    named = {who for names in bot.policy.approvers.values() for who in names}
    if user in named:
        return True
    return bool(await bot.user_groups(client, user))


def _why(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "error")
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------------------
# One page of the answer


@dataclass(frozen=True)
class HistoryPage:
    records: list[ExecutionRecord]
    page: int
    has_next: bool
    ranking: Literal["newest", "best"]
    beyond_reach: bool = False  # more records match than the last reachable page shows


@dataclass(frozen=True)
class _Found:
    record: ExecutionRecord
    score: float | None


async def find_page(store: HistoryStore, query: HistoryQuery, audience: Audience, page: int) -> HistoryPage:
    """Page ``page`` (from 0) of the records ``query`` matches among those ``audience`` may see."""
    page = max(0, min(page, LAST_PAGE))
    ranking: Literal["newest", "best"] = "best" if query.text else "newest"
    channels, command_line = _searched(query, audience)
    need = (page + 1) * PAGE_SIZE + 1
    found: list[_Found] = []
    if channels:
        found = await _fetch(store, query.text, query.record_filter(channels), need)
    if command_line:
        floor = found[need - 1].record.timestamp if len(found) >= need and not query.text else None
        found += await _command_line_records(store, query, need, floor)
    if query.text:
        found.sort(key=lambda f: f.score or 0.0, reverse=True)
    else:
        found.sort(key=lambda f: (f.record.timestamp, str(f.record.id)), reverse=True)
    start = page * PAGE_SIZE
    more = len(found) > start + PAGE_SIZE
    return HistoryPage(
        records=[f.record for f in found[start : start + PAGE_SIZE]],
        page=page,
        has_next=more and page < LAST_PAGE,
        ranking=ranking,
        beyond_reach=more and page >= LAST_PAGE,
    )


def _searched(query: HistoryQuery, audience: Audience) -> tuple[set[str], bool]:
    """The channels to search (asked for and visible) and whether command-line records are included."""
    if not query.has_channel_filter:
        return set(audience.channels), audience.command_line
    unknown = [name for name in query.channel_names if name not in audience.names]
    if unknown:
        raise QueryError(
            f"You are in no channel named {code_span('#' + unknown[0], 82)}. "
            f"Use {code_span('channel:here')} or pick the channel from Slack's suggestions."
        )
    asked = set(query.channel_ids) | {audience.names[name] for name in query.channel_names}
    # A channel the person is not in gives nothing rather than an error: the answer must not tell whether
    # such a channel has any history.
    return asked & audience.channels, False


async def _fetch(store: HistoryStore, text: str, filters: RecordFilter, limit: int) -> list[_Found]:
    if text:
        return [_Found(hit.record, hit.score) for hit in await store.search(text, filters, limit)]
    return [_Found(record, None) for record in await store.latest(limit, filters)]


async def _command_line_records(
    store: HistoryStore, query: HistoryQuery, need: int, floor: datetime | None
) -> list[_Found]:
    """Up to ``need`` of the newest (or best matching) records without a channel.

    Read without the channel condition and picked out here. For a listing, windows of the newest records
    are read back in time until enough are found, the records run out, or they are older than ``floor``
    (the oldest record the page can show). A text search reads a few times ``need`` best matches; a
    command-line record ranked below all of those is not shown.
    """
    filters = query.record_filter()
    if query.text:
        depth = min(MAX_LIMIT, need * COMMAND_LINE_SEARCH_DEPTH)
        return [f for f in await _fetch(store, query.text, filters, depth) if f.record.channel is None][:need]
    found: list[_Found] = []
    seen: set[str] = set()
    until = filters.until
    window_size = min(MAX_LIMIT, max(need, COMMAND_LINE_WINDOW))
    for _ in range(COMMAND_LINE_SCANS):
        window = await store.latest(window_size, filters.model_copy(update={"until": until}))
        for record in window:
            if str(record.id) not in seen:
                seen.add(str(record.id))
                if record.channel is None:
                    found.append(_Found(record, None))
        if len(found) >= need or len(window) < window_size:
            break
        oldest = window[-1].timestamp
        if (floor is not None and oldest < floor) or oldest == until:
            break
        # ``until`` is inclusive: the records at the boundary come again and are skipped as seen.
        until = oldest
    return found[:need]


# ---------------------------------------------------------------------------------------------------------
# Page buttons


class PageRef(BaseModel):
    """What a page button carries: the query (or the key it is kept under), the page and ``as_of``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q: str | None = Field(default=None, description="The query text.")
    k: str | None = Field(default=None, description="Key of a query kept by SavedQueries.")
    p: int = Field(ge=0, le=LAST_PAGE)
    t: int = Field(ge=0, description="as_of, in epoch seconds.")

    @property
    def as_of(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    @property
    def value(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"), ensure_ascii=False)


class PageRefError(ValueError):
    """A page button whose value names no query that can still be run."""


def parse_page_value(value: object) -> PageRef:
    if not isinstance(value, str):
        raise PageRefError("the page button carries no query")
    try:
        ref = PageRef.model_validate_json(value)
    except ValidationError:
        raise PageRefError("the page button's value is not a history query") from None
    if (ref.q is None) == (ref.k is None):
        raise PageRefError("the page button's value is not a history query")
    return ref


class SavedQueries:
    """Queries too long for a button value, kept in memory under a short random key for ``ttl_seconds``.

    Kept per process: after a restart (or on another replica) the key is unknown and the person is asked to
    run the command again. Each entry is bound to the person who ran the query.
    """

    def __init__(self, *, max_entries: int = 1_000, ttl_seconds: float = 24 * 3600) -> None:
        self._entries: OrderedDict[str, tuple[float, str, str]] = OrderedDict()
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds

    def save(self, user: str, text: str) -> str:
        self._expire()
        key = secrets.token_urlsafe(12)
        self._entries[key] = (time.monotonic(), user, text)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return key

    def load(self, user: str, key: str) -> str | None:
        self._expire()
        entry = self._entries.get(key)
        if entry is None or entry[1] != user:
            return None
        return entry[2]

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.ttl_seconds
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if oldest[0] >= cutoff:
                break
            self._entries.popitem(last=False)


SAVED_QUERIES = SavedQueries()


def page_value(text: str, page: int, as_of: datetime, *, user: str, saved: SavedQueries = SAVED_QUERIES) -> str:
    """The value of a button that shows ``page`` of the query ``text``: inline if it fits, else by key."""
    t = math.ceil(as_of.timestamp())
    inline = PageRef(q=text, p=page, t=t)
    if len(inline.value) <= BUTTON_VALUE_MAX:
        return inline.value
    return PageRef(k=saved.save(user, text), p=page, t=t).value


def query_text_of(ref: PageRef, *, user: str, saved: SavedQueries = SAVED_QUERIES) -> str:
    if ref.q is not None:
        return ref.q
    text = saved.load(user, ref.k or "")
    if text is None:
        raise PageRefError("this search is no longer kept; run the command again")
    return text


def as_of_now() -> datetime:
    """The first page's ``as_of``: now, rounded up to the second the page buttons carry."""
    return datetime.fromtimestamp(math.ceil(time.time()), UTC)


# ---------------------------------------------------------------------------------------------------------
# The answer


async def history_answer(
    bot: BotContext,
    client: Any,
    query: HistoryQuery,
    *,
    text: str,
    page: int,
    user: str,
    here: str,
    here_name: str | None,
) -> RenderedMessage:
    """Page ``page`` of ``query`` (typed as ``text``) as ``user`` may see it, ready to post ephemerally."""
    audience = await audience_for(client, bot, user=user, here=here, here_name=here_name)
    try:
        result = await find_page(bot.store, query, audience, page)
    except QueryError as exc:
        return history_help_message(problem=str(exc))
    except StoreError:
        logger.exception("history query failed")
        return ephemeral(
            ":warning: The execution history could not be read just now. Try again in a moment; "
            "if it keeps failing, the bot's log says why."
        )
    notes = [audience.note] if audience.note else []
    if result.beyond_reach:
        notes.append(
            f"More records match than {LAST_PAGE + 1} pages can show; narrow the search "
            f"(for example with {code_span('since:')} or {code_span('status:')}) to reach older ones."
        )
    previous_value = page_value(text, result.page - 1, query.as_of, user=user) if result.page > 0 else None
    next_value = page_value(text, result.page + 1, query.as_of, user=user) if result.has_next else None
    return history_message(
        result.records,
        page=result.page,
        page_size=PAGE_SIZE,
        description=query.describe(),
        ranking=result.ranking,
        previous_value=previous_value,
        next_value=next_value,
        notes=notes,
    )
