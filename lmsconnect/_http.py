"""The one HTTP layer: an aiohttp session per connector, rate budgets, retries, pagination, call counts.

`HttpClient.request` is the only way a connector talks to its vendor. It:

1. waits for every window of the request's `RateBudget` (reads and writes can have separate budgets),
2. sends the request with the connector's auth and a timeout,
3. retries *idempotent* requests after connection errors, 5xx and 429 with exponential backoff and full
   jitter, honouring ``Retry-After`` and ``X-RateLimit-Reset``; a 429 pauses the whole budget, so
   concurrent requests do not pile onto a limit the vendor already reported,
4. never retries a non-idempotent request (a POST that may have been applied) — except once after a
   401 when the connector's ``on_unauthorized`` hook renewed the credentials (nothing was applied),
5. maps failures through the connector's `error_mapper` into the `LMSConnectError` tree, scrubbing every
   registered secret from messages and logs, and
6. treats every answer as untrusted: requests go only to the origin (scheme, host, port) of the base URL
   — a link or redirect elsewhere is refused before anything is sent, since the request would carry the
   connection's credentials —, bodies are read in chunks up to ``HttpOptions.max_response_bytes`` each
   and ``HttpOptions.max_buffered_bytes`` across the answers read at once, JSON
   nesting is bounded by ``HttpOptions.max_json_depth``, and the pagination helpers stop on a page or
   link that repeats (`PageGuard`).
"""

from __future__ import annotations

import array
import asyncio
import collections
import datetime as dt
import email.utils
import hashlib
import inspect
import itertools
import json
import logging
import math
import random
import re
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

import aiohttp
import attrs

from . import _telemetry as telemetry
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRemoteResponse,
    LMSConnectError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RemoteError,
)
from ._progress import count_call
from ._secrets import scrub

__all__ = [
    "BudgetBackend",
    "BudgetWait",
    "HttpClient",
    "HttpOptions",
    "HttpStats",
    "PageGuard",
    "RateBudget",
    "RateWindow",
    "Response",
    "SharedBudget",
    "paginate_link",
    "paginate_offset",
    "paginate_pages",
    "route_template",
    "stream_map",
]

log = logging.getLogger("lmsconnect.http")

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS: Final = 10
_MiB: Final = 1024 * 1024
_JSON_DEPTH: Final = 64
_CHUNK: Final = 64 * 1024
# NonHttpUrlClientError (an ftp:// or scheme-less URL) exists from aiohttp 3.10 on.
_BAD_URL: Final[tuple[type[Exception], ...]] = tuple(
    getattr(aiohttp, name) for name in ("InvalidURL", "NonHttpUrlClientError") if hasattr(aiohttp, name)
)
# UnicodeError: a host name IDNA cannot encode, such as "..." (an empty label) or a 64-letter label.
_BAD_URL_OR_HOST: Final[tuple[type[Exception], ...]] = (*_BAD_URL, UnicodeError)
T = TypeVar("T")
R = TypeVar("R")


# A name the resolver says does not exist (not a temporary resolver failure, EAI_AGAIN, which is retried).
_NO_SUCH_NAME: Final = frozenset(
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA") if hasattr(socket, name)
)


#: The code of the `ConfigurationError` for a host name that does not resolve (every call would fail).
HOST_UNRESOLVED: Final = "CONFIG.HOST_UNRESOLVED"


def _unresolvable_host(exc: BaseException, slug: str) -> ConfigurationError | None:
    """A host name that does not resolve is a configuration mistake, not a vendor outage: fail at once."""
    if (
        isinstance(exc, aiohttp.ClientConnectorError)
        and isinstance(exc.os_error, socket.gaierror)
        and exc.os_error.errno in _NO_SUCH_NAME
    ):
        return ConfigurationError(
            f"the host name {exc.host!r} does not resolve (DNS: {exc.os_error.strerror}): check the "
            f"domain or base URL",
            connector=slug,
            code=HOST_UNRESOLVED,
        )
    return None


class RateWindow:
    """At most `limit` calls in any sliding `period` seconds.

    A sliding log, not aiolimiter's leaky bucket: a leaky bucket of capacity N and rate N/period lets up
    to ~2N calls into one `period`-long window (a full burst, then the refill), and vendors that count
    fixed or sliding windows reject the excess. A log of send times is exact, and at the vendor's limits
    (hundreds of calls) costs nothing.
    """

    def __init__(self, limit: int, period: float, *, name: str = "", margin: float = 0.0) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a rate window needs limit >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self.name = name or f"{limit}/{period:g}s"
        # Margin covers clock and network jitter between our send time and the vendor's count.
        self._span = period + margin
        self._sent: collections.deque[float] = collections.deque()

    def delay(self, now: float) -> float:
        """Seconds until one more call fits (0 if it fits now)."""
        while self._sent and now - self._sent[0] >= self._span:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self._span - now

    def record(self, now: float) -> None:
        self._sent.append(now)

    def shared_spec(self) -> tuple[int, float]:
        """``(limit, span seconds)``: how a `BudgetBackend` counts this window (a sliding log)."""
        return self.limit, self._span

    def floor_seconds(self, calls: int) -> float:
        """The least time `calls` calls can take under this window alone."""
        if calls <= self.limit:
            return 0.0
        return ((calls - 1) // self.limit) * self.period

    def __repr__(self) -> str:
        return f"RateWindow({self.name})"


class BudgetBackend(Protocol):
    """Where the windows of shared `RateBudget`s are counted, so that several processes using one
    tenant's credentials draw from one budget (`lmsconnect.PostgresBudgets` is one).

    Keys name a budget (a tenant's reads, say); every call is counted in every window of its budget.
    """

    async def admit(self, key: str, windows: Sequence[tuple[int, float]]) -> float:
        """Count one call and return 0 when every window ``(limit, span seconds)`` of `key` admits it now
        and no pause holds `key`; else count nothing and return the seconds until it may."""
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Hold every call of `key`, in every process, for `seconds` (the vendor answered 429)."""
        ...


@attrs.frozen
class SharedBudget:
    """The rate budgets of one connection, counted in `backend` under `key` (e.g. the tenant's id):

    >>> async with lmsconnect.PostgresBudgets(url) as budgets:
    ...     async with lmsconnect.connect("talentlms", budget=budgets.tenant("acme"), **config) as lms: ...

    Every process that connects with the same key shares the vendor's windows, and a 429 one of them
    receives pauses all of them. The key must identify the vendor's account, not the process.
    """

    backend: BudgetBackend
    key: str = attrs.field(validator=attrs.validators.min_len(1))


class RateBudget:
    """Several windows that must all admit a call (e.g. 200 per 5 s *and* 10,000 per hour).

    Counted in this process by default; `share` moves the counting to a `BudgetBackend`.
    """

    def __init__(self, *windows: RateWindow, name: str = "") -> None:
        self.windows = windows
        self._name = name
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._backend: BudgetBackend | None = None
        self._key = ""
        self.waited_s = 0.0

    @property
    def name(self) -> str:
        # Computed, not frozen at construction: a window re-sized later (TalentLMS calibrates its hourly
        # window from /v1/ratelimit) shows its real limit in messages.
        return self._name or ", ".join(w.name for w in self.windows) or "unlimited"

    def share(self, backend: BudgetBackend, key: str) -> None:
        """Count this budget's calls in `backend` under `key`, with every other process that does."""
        self._backend = backend
        self._key = key

    def pause_until(self, when: float) -> None:
        """Hold every call of this process until the monotonic time `when`."""
        self._paused_until = max(self._paused_until, when)

    async def pause(self, seconds: float) -> None:
        """Hold every call for `seconds` (the vendor reported a limit) — in every process sharing it."""
        self.pause_until(time.monotonic() + seconds)
        if self._backend is not None and seconds > 0:
            await self._backend.pause(self._key, seconds)

    async def _admit(self, now: float) -> float:
        """0 after counting one call, else the seconds to wait (nothing counted)."""
        local = self._paused_until - now
        if self._backend is not None:
            if local > 0:
                return local
            # Read at each attempt: a window re-sized by calibration counts with its new limit.
            return await self._backend.admit(self._key, [w.shared_spec() for w in self.windows])
        wait = max([local] + [w.delay(now) for w in self.windows])
        if wait <= 0:
            for window in self.windows:
                window.record(now)
        return wait

    async def acquire(
        self,
        *,
        max_wait_s: float | None = None,
        report_wait_s: float = math.inf,
        on_wait: Callable[[float], Awaitable[None]] | None = None,
        where: str = "",
        connector: str | None = None,
    ) -> None:
        """Wait until every window admits one more call, and count it.

        A wait that would end more than `max_wait_s` after the call began waiting raises `RateLimited`
        (its ``retry_after`` says when the budget admits the call) instead of blocking silently for up
        to an hour; a wait of at least `report_wait_s` is handed to `on_wait` (seconds) first.
        """
        start = time.monotonic()
        # One waiter at a time keeps admission in FIFO order and the log consistent (and, when shared,
        # one request to the backend in flight per budget and process).
        async with self._lock:
            while True:
                now = time.monotonic()
                wait = await self._admit(now)
                if wait <= 0:
                    self.waited_s += now - start
                    return
                if max_wait_s is not None and now + wait - start > max_wait_s:
                    raise RateLimited(
                        f"{where or 'a call'}: the rate budget {self.name} admits it only in {wait:,.0f} s, "
                        f"more than the longest wait this connection accepts ({max_wait_s:g} s, "
                        "HttpOptions.max_wait_s)",
                        retry_after=wait,
                        connector=connector,
                    )
                if wait >= report_wait_s and on_wait is not None:
                    await on_wait(wait)
                await asyncio.sleep(wait)

    def floor_seconds(self, calls: int) -> float:
        return max((w.floor_seconds(calls) for w in self.windows), default=0.0)


@attrs.define(kw_only=True)
class HttpOptions:
    """Transport settings a caller may tune through ``connect(..., http=HttpOptions(...))``."""

    # Validated so that a zero attempt count or timeout fails here, not deep inside a request.
    timeout_s: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    connect_timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    backoff_base_s: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_max_s: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))
    max_connections: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    # A vendor hint longer than this (an hourly limit saying "come back in 3600 s") is not slept
    # through inside one call: the caller gets RateLimited with `retry_after` and decides.
    max_retry_wait_s: float = attrs.field(default=120.0, validator=attrs.validators.ge(0))
    # The longest wait for the connection's own rate budget (an hourly plan budget spent, a vendor's
    # "remaining: 0" with a far reset) that one read or action call accepts; beyond it the call raises
    # RateLimited with `retry_after`. Five minutes covers every per-second/minute window and the tail
    # of an hourly one, without a call hanging silently for an hour.
    max_wait_s: float = attrs.field(default=300.0, validator=attrs.validators.ge(0))
    # Budget waits at least this long are logged (once, with the time they end) and handed to the
    # client's wait listeners (the sync progress callback, the CLI display).
    report_wait_s: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))
    # The largest answer read, in bytes (decompressed). Moodle answers a user listing in one body of
    # about 750 bytes per user, so 256 MiB leaves room for ~350,000 users; an answer announcing more
    # (Content-Length) is refused before its body is read, and a body that grows past it is abandoned
    # mid-read, so a hostile or broken server cannot take the process's memory.
    max_response_bytes: int = attrs.field(default=256 * _MiB, validator=attrs.validators.ge(1))
    # The most body bytes the connection buffers at once across all the answers it is reading
    # concurrently (Moodle reads 16 at a time, each up to max_response_bytes: 4 GiB without this).
    # An answer whose next bytes would cross it is refused at once (never waited for, so concurrent
    # reads cannot deadlock on each other); the bytes of a finished read belong to its caller.
    max_buffered_bytes: int = attrs.field(default=512 * _MiB, validator=attrs.validators.ge(1))
    # The deepest JSON nesting accepted. The vendors' real answers nest under 10 levels; a deeper one
    # is refused by a linear scan before it reaches json.loads (which would recurse).
    max_json_depth: int = attrs.field(
        default=_JSON_DEPTH, validator=[attrs.validators.ge(1), attrs.validators.le(512)]
    )


@attrs.define
class HttpStats:
    """Counts a benchmark or a caller reads: calls sent (retries included), retries, 429s received, and
    the calls held by the rate budget (``waits``: for at least `BUDGET_WAIT_MIN_S`; ``wait_s``: seconds
    spent waiting by every call)."""

    calls: int = 0
    retries: int = 0
    rejected: int = 0
    by_status: collections.Counter[int] = attrs.field(factory=collections.Counter)
    wait_s: float = 0.0
    waits: int = 0


@attrs.frozen
class Response:
    """A fully read response."""

    method: str
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    # The client's secrets, so that quoting the body in an error cannot leak one (vendors echo tokens).
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False, eq=False)
    max_json_depth: int = attrs.field(default=_JSON_DEPTH, repr=False, eq=False)
    connector: str | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def excerpt(self, limit: int = 80) -> str:
        """The start of the body, scrubbed of the client's secrets, for an error message."""
        # Scrub before cutting, so no part of a secret survives at the cut; scrub only a window long
        # enough for any secret (percent-encoded) to fall wholly inside it.
        window = limit + 3 * max((len(v) for v in self.secrets), default=0)
        head = self.body[: 4 * window].decode("utf-8", errors="replace")[:window]
        return scrub(head, self.secrets)[:limit]

    def json(self) -> Any:
        """The body as JSON; `InvalidRemoteResponse` naming the endpoint when it is not strict JSON
        (invalid, truncated, not UTF-8, an HTML page, NaN/Infinity, nested deeper than
        ``HttpOptions.max_json_depth``)."""
        problem = ""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            problem = f"a body that is not UTF-8 (byte {exc.start})"
        else:
            if json_depth_exceeds(self.body, self.max_json_depth):
                problem = f"JSON nested deeper than {self.max_json_depth} levels (HttpOptions.max_json_depth)"
            else:
                try:
                    value = json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constant)
                except (ValueError, RecursionError):
                    problem = ""
                else:
                    return _replace_lone_surrogates(value) if _SURROGATE_ESCAPE.search(self.body) else value
        # Raised outside the except blocks: the decoder's own exception (which quotes the body) is not
        # kept as the error's __context__.
        shown = problem or repr(self.excerpt())
        raise InvalidRemoteResponse(
            f"expected JSON from {self.method} {self.url}, got {shown}",
            status=self.status,
            connector=self.connector,
        )


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff). json.loads joins a valid pair into one character,
# so any surrogate left in a decoded string is a lone one, which no UTF-8 text can hold (the store's
# digests and every encoder after us would fail on it).
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    """`value` with each lone surrogate in its strings (keys too) replaced by U+FFFD, as a UTF-8 decoder
    replaces an invalid sequence: one odd character in a vendor's display name must not fail a read.
    Iterative (the depth is already bounded by max_json_depth, but no recursion is needed)."""

    def fix(item: Any) -> Any:
        return _LONE_SURROGATE.sub("\ufffd", item) if isinstance(item, str) else item

    root = [fix(value)]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for index, item in enumerate(node):
                node[index] = fix(item)
                if isinstance(item, (list, dict)):
                    stack.append(item)
        elif isinstance(node, dict):
            for key in [k for k in node if _LONE_SURROGATE.search(k)]:
                node[fix(key)] = node.pop(key)
            for key, item in node.items():
                node[key] = fix(item)
                if isinstance(item, (list, dict)):
                    stack.append(item)
    return root[0]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_BRACKET_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_QUOTE_OR_BRACKET: Final = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON in `body` nests deeper than `limit`, found without recursion.

    Escaped backslashes and quotes are dropped, then everything but quotes and brackets; a bracket after
    an odd number of quotes is inside a string and dropped too; the remaining brackets become +1/-1
    steps, and the deepest running sum is the nesting depth. Each pass runs at C speed, linear in the
    body whatever it holds (no regex that could backtrack from one quote to the next), over slices of
    the body so that the scan's own memory stays small even for a body of nothing but quotes.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = deepest = 0
    inside = False  # whether the slice starts inside a string
    start = 0
    while start < len(body):
        end = min(start + _SCAN_SLICE, len(body))
        # Never cut a run of backslashes: the run and the character after it (which the run's last
        # backslash may escape) stay in one slice.
        while end < len(body) and body[end - 1] == 0x5C:
            end += 1
        part = body[start:end].replace(b"\\\\", b"").replace(b'\\"', b"")
        pieces = part.translate(None, _NOT_QUOTE_OR_BRACKET).split(b'"')
        outside = b"".join(pieces[1::2] if inside else pieces[::2])
        if len(pieces) % 2 == 0:  # an odd number of quotes: the next slice starts on the other side
            inside = not inside
        steps = array.array("b", outside.translate(_BRACKET_STEPS))
        deepest = max(deepest, max(itertools.accumulate(steps, initial=depth)))
        if deepest > limit:
            return True
        depth += sum(steps)
        start = end
    return False


_SCAN_SLICE: Final = 1024 * 1024


ErrorMapper = Callable[[Response], "LMSConnectError | None"]
Auth = Callable[[dict[str, str]], Awaitable[None]]


def default_error(response: Response, *, slug: str) -> LMSConnectError:
    """The error for a failed response when the vendor's body says nothing more specific."""
    where = f"{response.method} {response.url}"
    status = response.status
    # Scrubbed before the message is cut to size, so no part of a secret survives at the cut.
    vendor = response.excerpt(300) if response.body else None
    if status == 401:
        return AuthenticationError(f"{where} was rejected as unauthenticated", status=status,
                                   connector=slug, vendor_message=vendor)
    if status == 403:
        return PermissionDenied(f"{where} was forbidden", status=status, connector=slug,
                                vendor_message=vendor)
    if status == 404:
        return NotFound(f"{where} found nothing", status=status, connector=slug, vendor_message=vendor)
    if status == 429:
        return RateLimited(f"{where} was rate limited", status=status, connector=slug,
                           vendor_message=vendor, retry_after=retry_after(response.headers))
    return RemoteError(f"{where} failed", status=status, connector=slug, vendor_message=vendor)


def _exhausted(headers: Mapping[str, str]) -> bool:
    remaining = headers.get("X-RateLimit-Remaining") or headers.get("X-Ratelimit-Remaining")
    return remaining is not None and remaining.strip() == "0"


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``X-RateLimit-Reset``.

    A value that cannot be read (garbage, ``inf``, ``nan``) counts as absent: a vendor's malformed
    header must neither crash the request nor make it wait forever.
    """
    value = headers.get("Retry-After")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                parsed = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                parsed = None
            if parsed is not None:
                if parsed.tzinfo is None:  # RFC 9110 dates are GMT
                    parsed = parsed.replace(tzinfo=dt.timezone.utc)
                return max(0.0, parsed.timestamp() - time.time())
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    reset = headers.get("X-RateLimit-Reset") or headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            number = float(reset)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        # Vendors send either an epoch timestamp or seconds from now.
        wall = time.time() if now is None else now
        return max(0.0, number - wall) if number > 1e9 else max(0.0, number)
    return None


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, the default port filled in; ports and hosts compared as parsed, so
    ``http://base@evil/`` is evil's origin, not base's."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", url, None)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        # "bücher.example" and "xn--bcher-kva.example" are one host.
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return (scheme, host, port or _DEFAULT_PORTS.get(scheme))


_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


#: A call held this long by its rate budget counts as one wait (`HttpStats.waits`, the
#: ``lmsconnect.budget.waits`` metric); admission itself takes microseconds (a shared budget's backend
#: a round trip of about a millisecond).
BUDGET_WAIT_MIN_S: Final = 0.01

# A path segment kept as it is in a route template: a word, optionally a version-like number of one or
# two digits and a file extension (v1, oauth2, server.php). Anything else may be an id.
_ROUTE_WORD: Final = re.compile(r"[A-Za-z][A-Za-z_-]{0,47}(?:\d{1,2})?(?:\.[a-z]{2,4})?")
_ROUTE_KEY: Final = re.compile(r"[A-Za-z_]{1,48}")
_ROUTE_PARAM: Final = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_OPERATION: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
# OpenTelemetry's known HTTP methods; any other (a passthrough's own) is recorded as "_OTHER".
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


def route_template(path: str) -> str:
    """A low-cardinality template of `path` for telemetry: what may be an id becomes a placeholder.

    Words (``users``, ``v1``, ``server.php``) stay; path-style parameters keep their names
    (``page_size:25,page_number:2`` -> ``page_size:{page_size},page_number:{page_number}``); any other
    segment becomes ``{id}``. A connector whose ids can look like words declares its routes instead
    (``HttpClient(routes=...)``).

    >>> route_template("/v1/users/id:12")
    '/v1/users/id:{id}'
    >>> route_template("/api/v2/courses/5f3a9c1e2b/archive")
    '/api/v2/courses/{id}/archive'
    """
    out = []
    for segment in path.split("/"):
        if not segment or _ROUTE_WORD.fullmatch(segment):
            out.append(segment)
        elif ":" in segment:
            keys = [pair.split(":", 1)[0] for pair in segment.split(",")]
            out.append(",".join(f"{k}:{{{k}}}" if _ROUTE_KEY.fullmatch(k) else "{param}" for k in keys))
        else:
            out.append("{id}")
    return "/".join(out)


@attrs.frozen(kw_only=True)
class BudgetWait:
    """A call waits for its rate budget: `seconds` long, until `until` (UTC)."""

    budget: str
    seconds: float
    until: dt.datetime


WaitListener = Callable[[BudgetWait], "Awaitable[None] | None"]


class HttpClient:
    """The HTTP session of one connector. Created by the connector's lifecycle; closed with it."""

    def __init__(
        self,
        *,
        slug: str,
        base_url: str,
        read_budget: RateBudget | None = None,
        write_budget: RateBudget | None = None,
        auth: Auth | None = None,
        on_unauthorized: Callable[[], Awaitable[bool]] | None = None,
        error_mapper: ErrorMapper | None = None,
        secrets: Iterable[str] = (),
        options: HttpOptions | None = None,
        headers: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        routes: Sequence[str] = (),
        operation_param: str | None = None,
    ) -> None:
        """`routes` and `operation_param` name calls in telemetry (`route_of`): `routes` are the
        connector's path templates whose ids could pass for words (``/api/v2/courses/{course_id}``;
        static paths first), `operation_param` the query parameter that names the remote function of
        an RPC-style API (Moodle's ``wsfunction``)."""
        self.slug = slug
        self.base_url = base_url.rstrip("/")
        self.read_budget = read_budget or RateBudget()
        self.write_budget = write_budget or self.read_budget
        self.options = options or HttpOptions()
        self.stats = HttpStats()
        self._auth = auth
        self._on_unauthorized = on_unauthorized
        self._error_mapper = error_mapper
        self._secrets = tuple(s for s in secrets if s)
        self._headers = dict(headers or {})
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._origin = origin_of(self.base_url)
        self._wait_listeners: list[WaitListener] = []
        self._reported_until: dict[int, float] = {}
        # Body bytes held right now by the reads in flight (bounded by max_buffered_bytes).
        self._buffered = 0
        self._base_path = urllib.parse.urlsplit(self.base_url).path.rstrip("/")
        self._routes = [
            (re.compile("[^/]+".join(re.escape(part) for part in _ROUTE_PARAM.split(r))), r) for r in routes
        ]
        self._operation_param = operation_param

    def share_budgets(self, shared: SharedBudget) -> None:
        """Count this client's budgets in ``shared.backend``: reads under ``shared.key``, a separate
        write budget under ``<key>:write``."""
        self.read_budget.share(shared.backend, shared.key)
        if self.write_budget is not self.read_budget:
            self.write_budget.share(shared.backend, f"{shared.key}:write")

    def add_secret(self, value: str) -> None:
        """Register one more value (e.g. an OAuth access token) to scrub from messages."""
        if value and value not in self._secrets:
            self._secrets = (*self._secrets, value)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=self.options.timeout_s, connect=self.options.connect_timeout_s
            )
            connector = aiohttp.TCPConnector(limit=self.options.max_connections)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
            # aiohttp >= 3.10 silently resends GET/PUT/DELETE once when the connection drops, even a
            # GET we marked non-idempotent (vendors that write through GET); retries are ours alone.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    @property
    def origin(self) -> str:
        """Scheme, host and port of the base URL: the only place this client sends requests to."""
        scheme, host, port = self._origin
        return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"

    def same_origin(self, url: str) -> bool:
        """Whether `url` (absolute, or relative to the base URL) is on the base URL's origin."""
        return origin_of(self.url(url)) == self._origin

    def add_wait_listener(self, listener: WaitListener) -> Callable[[], None]:
        """Call `listener` with a `BudgetWait` whenever a call starts a rate-budget wait of at least
        ``HttpOptions.report_wait_s``; returns the function that removes it again.

        >>> remove = lms.http.add_wait_listener(lambda w: print(f"waiting until {w.until:%H:%M:%S}"))
        """
        self._wait_listeners.append(listener)

        def remove() -> None:
            if listener in self._wait_listeners:
                self._wait_listeners.remove(listener)

        return remove

    async def _report_wait(self, budget: RateBudget, seconds: float) -> None:
        until = time.monotonic() + seconds
        event = BudgetWait(
            budget=budget.name,
            seconds=seconds,
            until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds),
        )
        # Logged once per wait, however many calls queue behind it.
        if until > self._reported_until.get(id(budget), 0.0) + 1.0:
            self._reported_until[id(budget)] = until
            log.warning(
                "%s: waiting %.1f s for the rate budget %s, until %s",
                self.slug, seconds, budget.name, event.until.astimezone().isoformat(timespec="seconds"),
            )
        for listener in list(self._wait_listeners):
            result = listener(event)
            if inspect.isawaitable(result):
                await result

    def route_of(self, url: str) -> str:
        """The route template of `url` (absolute, or relative to the base URL): the base URL's path, then
        the first declared route that matches, else `route_template`. Never a query, a secret or an id.

        >>> lms.http.route_of("/v1/users/id:12")
        '/api/v1/users/id:{id}'
        """
        path = urllib.parse.urlsplit(self.url(url)).path
        base = self._base_path
        if base and (path == base or path.startswith(base + "/")):
            path = path[len(base):]
        else:
            base = ""  # a path outside the base URL's (a link to the root): templated as a whole
        for pattern, route in self._routes:
            if pattern.fullmatch(path):
                return base + route
        return base + route_template(path)

    def _operation_of(self, params: Any) -> str | None:
        if self._operation_param is None or not isinstance(params, Mapping):
            return None
        value = params.get(self._operation_param)
        if value is None:
            return None
        return value if isinstance(value, str) and _OPERATION.fullmatch(value) else "{operation}"

    def count_retry(self, reason: str) -> None:
        """Count one retry in `stats` and telemetry; for a connector that retries a call itself (an
        answer the transport cannot judge, such as Moodle's transient database exception)."""
        self.stats.retries += 1
        if telemetry.ENABLED:
            telemetry.instruments().http_retries.add(
                1, {telemetry.CONNECTOR: self.slug, telemetry.REASON: reason}
            )

    def _foreign(self, method: str, url: str) -> InvalidRemoteResponse:
        shown = self.scrub(url.split("?")[0])
        return InvalidRemoteResponse(
            f"refused to send {method} {shown}: it is not on the connection's origin {self.origin}, and "
            "the request would carry the connection's credentials (a link or redirect from the vendor "
            "pointed elsewhere; if the site moved, give its new address as the base URL)",
            connector=self.slug,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        data: Any = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        write: bool | None = None,
        raise_for_status: bool = True,
        authenticate: bool = True,
    ) -> Response:
        """Send one request under the budgets and return the read response.

        ``idempotent`` defaults from the method (GET, HEAD, OPTIONS, PUT, DELETE); pass it for a POST that
        only reads (Moodle web services) or a GET that writes (TalentLMS v1). ``write`` picks the write
        budget; it defaults to "not GET/HEAD/OPTIONS", except a POST marked idempotent (a read) and a
        request marked non-idempotent (a write).
        """
        method = method.upper()
        if write is None:
            # Anything but a safe method writes, unless the caller vouched that this POST only reads
            # (Moodle's web-service reads); a GET declared non-idempotent writes (TalentLMS v1).
            write = (method not in SAFE_METHODS and idempotent is not True) or idempotent is False
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        budget = self.write_budget if write else self.read_budget
        url = self.url(path)
        if origin_of(url) != self._origin:
            raise self._foreign(method, url)
        shown = self.scrub(f"{method} {url.split('?')[0]}")
        attempts = self.options.max_attempts if idempotent else 1
        reauthenticated = False
        attempt = 0
        failure: LMSConnectError | None = None
        while attempt < attempts:
            attempt += 1
            await self._acquire(budget, shown)
            send_headers = dict(self._headers)
            send_headers.update(headers or {})
            if authenticate and self._auth is not None:
                await self._auth(send_headers)
            self.stats.calls += 1
            try:
                send = self._send(
                    method, url, params=params, data=data, json_body=json_body, headers=send_headers,
                    budget=budget, shown=shown,
                )
                response = await (self._observed(send, method, url, params, attempt) if telemetry.ENABLED
                                  else send)
            except _BAD_URL_OR_HOST as exc:
                # A malformed base URL is the caller's configuration, not a vendor outage: no retries.
                failure = ConfigurationError(
                    f"{shown} is not a valid http(s) URL ({type(exc).__name__}); check the base URL "
                    f"given to connect()",
                    connector=self.slug,
                )
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failure = _unresolvable_host(exc, self.slug)
                if failure is None:
                    reason = self.scrub(f"{type(exc).__name__}: {exc}")
                    if attempt < attempts:
                        await self._backoff(attempt, None, shown, reason)
                        continue
                    failure = RemoteError(
                        f"{shown} failed after {attempt} attempt(s): {reason}"
                        + ("" if idempotent else " (not retried: the request may have been applied)"),
                        connector=self.slug,
                    )
            if failure is not None:
                # Raised outside the except block, so aiohttp's exception (which may quote a URL with
                # credentials in its query) does not ride along as __context__.
                raise failure
            self.stats.by_status[response.status] += 1
            log.debug("%s -> %s", shown, response.status)
            if (
                response.status == 401
                and authenticate
                and self._on_unauthorized is not None
                and not reauthenticated
                and await self._on_unauthorized()
            ):
                # The credentials were renewed (an expired OAuth token): a 401 was not applied, so
                # sending once more is safe even for a non-idempotent request.
                reauthenticated = True
                attempt -= 1
                continue
            if response.status == 429:
                self.stats.rejected += 1
                if telemetry.ENABLED:
                    telemetry.instruments().http_rate_limited.add(1, {telemetry.CONNECTOR: self.slug})
                wait = retry_after(response.headers)
                # Capped like a retry wait: past the cap, the waiting calls get their own 429 and
                # a RateLimited that says how long, instead of hanging silently in the budget.
                wait = min(wait if wait is not None else 1.0, self.options.max_retry_wait_s)
                await budget.pause(wait)
            elif _exhausted(response.headers):
                # The vendor says the window is spent: hold further calls until it resets rather
                # than spend one on a certain 429.
                wait = retry_after(response.headers)
                if wait:
                    await budget.pause(wait)
            hinted = retry_after(response.headers)
            if (
                response.status in RETRY_STATUSES
                and attempt < attempts
                and (hinted is None or hinted <= self.options.max_retry_wait_s)
            ):
                await self._backoff(attempt, hinted, shown, str(response.status))
                continue
            if raise_for_status and response.status >= 400:
                raise self._error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(self, budget: RateBudget, shown: str) -> None:
        async def report(seconds: float) -> None:
            await self._report_wait(budget, seconds)

        before = time.monotonic()
        await budget.acquire(
            max_wait_s=self.options.max_wait_s,
            report_wait_s=self.options.report_wait_s,
            on_wait=report,
            where=shown,
            connector=self.slug,
        )
        count_call()  # for the sync's per-model progress: a budget slot taken is a call about to go out
        waited = time.monotonic() - before
        self.stats.wait_s += waited
        if waited >= BUDGET_WAIT_MIN_S:
            self.stats.waits += 1
            if telemetry.ENABLED:
                where = {telemetry.CONNECTOR: self.slug, telemetry.BUDGET: budget.name}
                meters = telemetry.instruments()
                meters.budget_waits.add(1, where)
                meters.budget_wait_time.add(waited, where)

    async def _observed(
        self, send: Awaitable[Response], method: str, url: str, params: Any, attempt: int
    ) -> Response:
        """`send` (one attempt) inside a CLIENT span, counted in the HTTP metrics."""
        template = self.route_of(url)
        operation = self._operation_of(params)
        _, host, port = self._origin
        known = method in _KNOWN_METHODS
        common: dict[str, Any] = {
            telemetry.CONNECTOR: self.slug,
            "http.request.method": method if known else "_OTHER",
            "url.template": template,
        }
        if operation is not None:
            common[telemetry.OPERATION] = operation
        attributes = {**common, "server.address": host}
        if port is not None:
            attributes["server.port"] = port
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        meters = telemetry.instruments()
        started = time.monotonic()
        with telemetry.http_span(method if known else "HTTP", operation or template, attributes) as span:
            try:
                response = await send
            except BaseException as exc:
                outcome = {**common, telemetry.ERROR_TYPE: telemetry.error_type(exc)}
                meters.http_calls.add(1, outcome)
                meters.http_duration.record(time.monotonic() - started, outcome)
                raise
            span.set_attribute("http.response.status_code", response.status)
            outcome = {**common, "http.response.status_code": response.status}
            if response.status >= 400:
                telemetry.fail(span, str(response.status))
                outcome[telemetry.ERROR_TYPE] = str(response.status)
            meters.http_calls.add(1, outcome)
            meters.http_duration.record(time.monotonic() - started, outcome)
            return response

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: Any,
        data: Any,
        json_body: Any,
        headers: Mapping[str, str],
        budget: RateBudget,
        shown: str,
    ) -> Response:
        """One exchange, following redirects only within the origin (aiohttp would follow them anywhere,
        resending a form body with a token in it on a 307), and reading at most max_response_bytes."""
        for hop in range(MAX_REDIRECTS + 1):
            if hop:
                await self._acquire(budget, shown)
                self.stats.calls += 1
            async with self.session.request(
                method, url, params=params, data=data, json=json_body, headers=headers,
                allow_redirects=False,
            ) as raw:
                location = raw.headers.get("Location")
                if raw.status in REDIRECT_STATUSES and location:
                    target = urllib.parse.urljoin(str(raw.url), location)
                    if origin_of(target) != self._origin:
                        raise self._foreign(method, target)
                    url, params = target, None
                    if raw.status == 303 or (raw.status in (301, 302) and method not in ("GET", "HEAD")):
                        method, data, json_body = "GET", None, None
                    continue
                body = await self._read(raw, shown)
                return Response(
                    method=method,
                    url=self.scrub(str(raw.url).split("?")[0]),
                    status=raw.status,
                    headers=raw.headers,
                    body=body,
                    secrets=self._secrets,
                    max_json_depth=self.options.max_json_depth,
                    connector=self.slug,
                )
        raise InvalidRemoteResponse(
            f"{shown} was redirected more than {MAX_REDIRECTS} times", connector=self.slug
        )

    async def _read(self, raw: aiohttp.ClientResponse, shown: str) -> bytes:
        """The body, in chunks, abandoned (connection closed) as soon as it passes the size cap."""
        cap = self.options.max_response_bytes

        def too_large(size: str) -> InvalidRemoteResponse:
            return InvalidRemoteResponse(
                f"{shown} answered {size}, more than the {cap:,} bytes this connection reads "
                "(HttpOptions.max_response_bytes)",
                status=raw.status,
                connector=self.slug,
            )

        if raw.content_length is not None and raw.content_length > cap:
            raise too_large(f"{raw.content_length:,} bytes (Content-Length)")
        held = 0

        def hold(size: int) -> None:
            # Reserve before buffering: the answer that would cross the connection-wide budget fails.
            nonlocal held
            limit = self.options.max_buffered_bytes
            if self._buffered + size > limit:
                raise InvalidRemoteResponse(
                    f"{shown} would take the body bytes this connection buffers at once past {limit:,} "
                    f"({self._buffered:,} already held by concurrent answers; "
                    "HttpOptions.max_buffered_bytes)",
                    status=raw.status,
                    connector=self.slug,
                )
            self._buffered += size
            held += size

        try:
            if raw.content_length is not None and "Content-Encoding" not in raw.headers:
                # The length is known and within the cap (the common case): one read, no chunk loop.
                hold(raw.content_length)
                return await raw.read()
            buffer = bytearray()
            async for chunk in raw.content.iter_chunked(_CHUNK):
                hold(len(chunk))
                buffer += chunk
                if len(buffer) > cap:
                    raise too_large("a longer body")
            return bytes(buffer)
        finally:
            self._buffered -= held

    def _error(self, response: Response) -> LMSConnectError:
        mapped = self._error_mapper(response) if self._error_mapper else None
        return self.raise_mapped(mapped or default_error(response, slug=self.slug))

    def raise_mapped(self, error: LMSConnectError) -> LMSConnectError:
        """Scrub and tag an error a connector built itself from a response body."""
        error.connector = error.connector or self.slug
        error.message = self.scrub(error.message)
        if error.vendor_message:
            error.vendor_message = self.scrub(error.vendor_message)
        error.args = (error.message,)
        return error

    async def _backoff(self, attempt: int, hinted: float | None, shown: str, reason: str) -> None:
        self.count_retry(reason.split(":", 1)[0])
        if hinted is not None:
            delay = hinted
        else:
            ceiling = min(self.options.backoff_max_s, self.options.backoff_base_s * 2 ** (attempt - 1))
            delay = self._rng.uniform(0, ceiling)
        log.info("%s: %s, retry %d in %.2f s", shown, reason, attempt, delay)
        await asyncio.sleep(delay)

    async def get_json(self, path: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, **kwargs)).json()


# -- pagination ---------------------------------------------------------------------------------------


class PageGuard:
    """Stops a pagination loop that does not advance, with `InvalidRemoteResponse` naming the endpoint.

    A vendor (or something between us and it) that answers every page number with the same page, or a
    cursor or ``next`` link that leads back to one already followed, would otherwise make a read run
    forever. Call `cursor` with each cursor or link before following it, and `page` with each page
    (its raw body, or its items); only digests are kept, never the pages.

    >>> guard = PageGuard("GET /v1/users", connector="talentlms")
    >>> while ...:
    ...     guard.page(response.body)   # raises when identical to the previous page
    ...     guard.cursor(next_cursor)   # raises when this cursor was followed before
    """

    def __init__(self, where: str, *, connector: str | None = None) -> None:
        self.where = where
        self.connector = connector
        self.pages = 0
        self._previous: bytes | None = None
        self._cursors: set[bytes] = set()

    @staticmethod
    def _digest(value: object) -> bytes:
        data = value if isinstance(value, bytes) else repr(value).encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, digest_size=16).digest()

    def page(self, content: object) -> None:
        """Record one page (bytes, or any value with a faithful ``repr``, such as a list of dicts)."""
        digest = self._digest(content)
        self.pages += 1
        if digest == self._previous:
            raise InvalidRemoteResponse(
                f"{self.where}: page {self.pages} is identical to page {self.pages - 1}; the pagination "
                "does not advance, so the read stops here instead of looping forever",
                connector=self.connector,
            )
        self._previous = digest

    def cursor(self, value: object) -> None:
        """Record a cursor, page token or next link about to be followed."""
        digest = self._digest(value)
        if digest in self._cursors:
            raise InvalidRemoteResponse(
                f"{self.where}: the next-page cursor or link repeats one already followed (after page "
                f"{self.pages}); the pagination loops, so the read stops here",
                connector=self.connector,
            )
        self._cursors.add(digest)


async def paginate_pages(
    fetch: Callable[[int], Awaitable[Sequence[T]]],
    *,
    page_size: int,
    first: int = 1,
    where: str = "page-numbered listing",
    connector: str | None = None,
) -> AsyncIterator[T]:
    """Page-number pagination: yield items of page `first`, `first`+1, ... until a short page.

    A full page identical to the one before stops with `InvalidRemoteResponse` (see `PageGuard`).
    """
    guard = PageGuard(where, connector=connector)
    page = first
    while True:
        items = await fetch(page)
        guard.page(items)
        for item in items:
            yield item
        if len(items) < page_size:
            return
        page += 1


async def paginate_offset(
    fetch: Callable[[int, int], Awaitable[Sequence[T]]],
    *,
    limit: int,
    start: int = 0,
    where: str = "offset listing",
    connector: str | None = None,
) -> AsyncIterator[T]:
    """Offset pagination: fetch(offset, limit) until a short page; a repeated page stops it (`PageGuard`)."""
    guard = PageGuard(where, connector=connector)
    offset = start
    while True:
        items = await fetch(offset, limit)
        guard.page(items)
        for item in items:
            yield item
        if len(items) < limit:
            return
        offset += len(items)


def next_link(headers: Mapping[str, str]) -> str | None:
    """The URL of ``rel="next"`` in a ``Link`` header, if any."""
    for value in _header_values(headers, "Link"):
        for part in value.split(","):
            section = part.split(";")
            if len(section) < 2:
                continue
            target = section[0].strip()
            rels = [s.strip() for s in section[1:]]
            if target.startswith("<") and target.endswith(">") and any(
                r.replace(" ", "") in ('rel="next"', "rel=next") for r in rels
            ):
                return target[1:-1]
    return None


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = headers.get(name)
    return [value] if value else []


async def paginate_link(
    http: HttpClient, path: str, *, params: Mapping[str, Any] | None = None, **kwargs: Any
) -> AsyncIterator[Response]:
    """Cursor pagination through ``Link: <...>; rel="next"``: yields each page's response.

    A link to another origin is refused before it is followed (`HttpClient.request`); a link followed
    before, or a page whose body repeats the previous one, stops with `InvalidRemoteResponse`.
    """
    url: str | None = path
    first = True
    guard = PageGuard(f"GET {path}", connector=http.slug)
    while url is not None:
        response = await http.request("GET", url, params=params if first else None, **kwargs)
        first = False
        guard.page(response.body)
        yield response
        url = next_link(response.headers)
        if url is not None:
            # A Link target is a URI reference: "/api/v2/x" starts at the host's root, not below
            # base_url (which may carry that same path prefix).
            url = urllib.parse.urljoin(http.base_url + "/", url)
            guard.cursor(url)


async def stream_map(
    items: AsyncIterator[T] | Iterable[T],
    func: Callable[[T], Awaitable[R]],
    *,
    concurrency: int,
) -> AsyncIterator[R]:
    """Apply `func` to each item with at most `concurrency` in flight; yield results in input order.

    Memory stays bounded by `concurrency` (the source is not read ahead further), which is what lets a
    connector make one call per course concurrently while the caller streams records.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    pending: collections.deque[asyncio.Task[R]] = collections.deque()

    async def source() -> AsyncIterator[T]:
        if isinstance(items, Iterable):
            for item in items:
                yield item
        else:
            async for item in items:
                yield item

    try:
        async for item in source():
            pending.append(asyncio.ensure_future(func(item)))
            if len(pending) >= concurrency:
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
