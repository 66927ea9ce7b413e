"""A seeded, mutating HTTP proxy and a witness server: the weapons of the fuzz tests.

>>> async with WitnessServer() as witness, HostileProxy(sim.url, seed=7, witness=witness) as proxy:
...     config = {**sim.connect_config, "base_url": proxy.rewrite(sim.connect_config["base_url"])}
...     async with lmsconnect.connect("moodle", **config) as lms:
...         ...   # about a third of the answers are now broken, reproducibly for seed 7
...     assert not witness.leaks(secrets=[config["token"]])

`HostileProxy` forwards every request to the upstream (a simulator) and mutates about `rate` of the
answers with one named mutation each (`HostileProxy.MUTATIONS`): dropped keys, wrong types, nulls,
huge numbers and strings, deep nesting, truncated or invalid bodies, HTML error pages, wrong content
types, giant bodies (streamed, never held in memory), cut connections, pages that never advance, and
``Link`` headers or redirects that point at a `WitnessServer` on another port. The witness records
every request it receives; a credential seen there was sent off the configured origin.

Whether and how an answer is mutated depends only on the seed, the request (method, path, query, body) and
how many times that same request came before — not on the order in which concurrent requests arrive — so
a failure is reproducible from the seed. `HostileProxy.applied` lists which mutation hit which request;
``mutations=("deep_nesting",)`` restricts the menu to reproduce one finding alone.

Only loopback: the proxy refuses an upstream or witness that is not on 127.0.0.1 / ::1 / localhost.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import logging
import random
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final

import aiohttp
import attrs
from aiohttp import web
from multidict import CIMultiDict

from ._server import SimulatorServer

__all__ = ["MUTATIONS", "AppliedMutation", "HostileProxy", "SeenRequest", "WitnessServer"]

log = logging.getLogger("lmsconnect.testing.hostile")

#: Every mutation the proxy knows, with its default weight (how often it is picked among the applicable
#: ones when an answer is mutated). Giant bodies are rare because each one costs real transfer time.
MUTATIONS: Final[Mapping[str, float]] = {
    # one node of a JSON body
    "drop_key": 3.0,
    "wrong_type": 3.0,
    "null_value": 3.0,
    "huge_number": 2.0,
    "huge_string": 1.0,
    "deep_nesting": 1.0,
    # the whole body
    "truncated_body": 1.0,
    "invalid_body": 1.0,
    "empty_body": 1.0,
    "html_error_page": 1.0,
    "wrong_content_type": 1.0,
    "giant_body": 0.3,
    "cut_connection": 0.5,
    # pagination and origin
    "repeat_page": 1.0,
    "foreign_link": 1.0,
    "redirect_to_witness": 1.0,
}

_JSON_MUTATIONS: Final = frozenset(
    {"drop_key", "wrong_type", "null_value", "huge_number", "huge_string", "deep_nesting"}
)
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
# Request parameters that move through a listing; a request differing only in them is "the same page".
_PAGING: Final = frozenset(
    {"next", "cursor", "page", "page_number", "offset", "skip", "start", "limitfrom", "after", "from"}
)
_HOP_BY_HOP: Final = frozenset(
    {
        "host", "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
        "accept-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection",
    }
)  # fmt: skip
_HTML_PAGE: Final = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
    "<body><h1>{status} {reason}</h1><p>The upstream server is temporarily unable to service your "
    "request.</p><hr><center>nginx</center></body></html>\n"
)
_HUGE_NUMBERS: Final[tuple[Any, ...]] = (
    10**30, -(10**30), 2**63, 2**64 + 1, -1, 1e308, float("inf"), float("-inf"), float("nan"), 10**4000,
)
_CREDENTIAL_HEADERS: Final = ("authorization", "cookie", "x-api-key", "x-auth-token")
_CREDENTIAL_PARAM: Final = re.compile(r"token|api_?key|secret|password|passwd", re.IGNORECASE)


@attrs.frozen(kw_only=True)
class AppliedMutation:
    """One mutated answer: the `seed`, the proxy's request number `index`, the request and the mutation."""

    seed: int
    index: int
    method: str
    path: str
    mutation: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"seed {self.seed} request #{self.index} {self.method} {self.path}: {self.mutation}"
        return text + (f" ({self.detail})" if self.detail else "")


@attrs.frozen(kw_only=True)
class SeenRequest:
    """A request the witness received: method, path with query, headers and body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def credentials(self, secrets: Iterable[str] = ()) -> list[str]:
        """What in this request is a credential: credential headers, parameters named like one (``wstoken``,
        ``access_token``, ``api_key``...) in the query or a form body, and any of `secrets` anywhere."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        found: list[str] = [name for name in _CREDENTIAL_HEADERS if name in headers]
        body = self.body.decode("utf-8", "replace")
        query = urllib.parse.urlsplit(self.path).query
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        params += urllib.parse.parse_qsl(body, keep_blank_values=True)
        found += [f"parameter {k}" for k, v in params if v and _CREDENTIAL_PARAM.search(k)]
        texts = [self.path, urllib.parse.unquote_plus(self.path), *headers.values(), body]
        texts.append(urllib.parse.unquote_plus(body))
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # HTTP Basic hides the key in base64
            try:
                texts.append(base64.b64decode(token, validate=False).decode("utf-8", "replace"))
            except ValueError:
                pass
        text = "\n".join(texts)
        found += [f"secret {s[:3]}…" for s in secrets if s and len(s) >= 4 and s in text]
        return found


def _require_loopback(url: str, what: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in _LOOPBACK:
        raise ValueError(f"the {what} must be on loopback (127.0.0.1), got {url!r}")


class WitnessServer(SimulatorServer):
    """A server that should never be contacted: it records every request and answers ``[]``.

    A request here means a connector followed a link or redirect off its configured origin; one that
    carries a credential (`leaks`) means a secret was sent to another host.
    """

    def __init__(self) -> None:
        self.seen: list[SeenRequest] = []

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(
            SeenRequest(method=request.method, path=request.path_qs, headers=dict(request.headers), body=body)
        )
        return web.json_response([])

    def leaks(self, secrets: Iterable[str] = ()) -> list[SeenRequest]:
        """The received requests that carried a credential (see `SeenRequest.credentials`)."""
        wanted = tuple(secrets)
        return [r for r in self.seen if r.credentials(wanted)]


class _Sticky:
    """A page served again for every later request of the same listing (a page that never advances)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes, left: int) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.left = left


class HostileProxy(SimulatorServer):
    """Forward to `upstream`, mutating about `rate` of the answers, reproducibly for `seed`.

    ``upstream`` is the origin (or any URL on it) of the server behind, e.g. a simulator's ``url``.
    ``mutations`` restricts the menu (names from `MUTATIONS`); ``weights`` overrides their weights.
    ``witness`` is where foreign links and redirects point (without one those two mutations are off).
    ``giant_bytes`` is the size of a giant body; ``stuck_requests`` how many requests a repeated page
    keeps answering before the listing moves on again (or `unstick` is called).

    ``HostileProxy.MUTATIONS`` names every mutation with its default weight.

    Counters: `requests` (answers given), `counts` (per mutation), `applied` (each mutated request,
    in order) — also logged at INFO on the ``lmsconnect.testing.hostile`` logger.
    """

    MUTATIONS: ClassVar[Mapping[str, float]] = MUTATIONS

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        rate: float = 1 / 3,
        mutations: Iterable[str] | None = None,
        weights: Mapping[str, float] | None = None,
        witness: WitnessServer | None = None,
        giant_bytes: int = 320 * 2**20,
        stuck_requests: int = 1_000,
        nesting_depth: int = 100_000,
    ) -> None:
        _require_loopback(upstream, "upstream")
        parts = urllib.parse.urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        chosen = dict(MUTATIONS if mutations is None else {m: MUTATIONS[m] for m in mutations})
        unknown = set(weights or {}) - set(MUTATIONS)
        if unknown:
            raise ValueError(f"unknown mutations: {sorted(unknown)}; known: {sorted(MUTATIONS)}")
        chosen.update({k: v for k, v in (weights or {}).items() if k in chosen})
        if witness is None:
            chosen.pop("foreign_link", None)
            chosen.pop("redirect_to_witness", None)
        self.weights = chosen
        self.seed = seed
        self.rate = rate
        self.witness = witness
        self.giant_bytes = giant_bytes
        self.stuck_requests = stuck_requests
        self.nesting_depth = nesting_depth
        #: When False the proxy forwards everything untouched (a clean pass through the same URL).
        self.enabled = True
        self.requests = 0
        self.counts: collections.Counter[str] = collections.Counter()
        self.applied: list[AppliedMutation] = []
        self._seen: collections.Counter[str] = collections.Counter()
        self._sticky: dict[str, _Sticky] = {}
        self._client: aiohttp.ClientSession | None = None

    # -- lifecycle and addresses ------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_cleanup.append(self._close_client)
        return app

    async def _close_client(self, app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    def rewrite(self, url: str) -> str:
        """`url` on the upstream's origin, moved to the proxy's (e.g. a simulator's ``base_url``)."""
        return url.replace(self.upstream, self.origin, 1) if url.startswith(self.upstream) else url

    def reseed(self, seed: int) -> None:
        """Start over with another seed: per-request draws, repeated pages and counters of requests seen."""
        self.seed = seed
        self._seen.clear()
        self._sticky.clear()

    def unstick(self) -> None:
        """Let every listing stuck on a repeated page move on (call between two operations)."""
        self._sticky.clear()

    # -- the handler ------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests += 1
        index = self.requests
        route = _route_key(request.method, request.path_qs, body)
        sticky = self._sticky.get(route) if self.enabled else None
        if sticky is not None:
            sticky.left -= 1
            if sticky.left <= 0:
                del self._sticky[route]
            return web.Response(status=sticky.status, headers=sticky.headers, body=sticky.body)
        status, headers, payload = await self._forward(request, body)
        if not self.enabled:
            return web.Response(status=status, headers=headers, body=payload)
        key = f"{request.method} {request.path_qs} {hashlib.blake2b(body, digest_size=8).hexdigest()}"
        self._seen[key] += 1
        digest = hashlib.blake2b(f"{self.seed}|{key}|{self._seen[key]}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        if rng.random() >= self.rate:
            return web.Response(status=status, headers=headers, body=payload)
        doc = _json_or_none(payload)
        applicable = [
            name for name in self.weights
            if self._applies(name, doc, request, route, headers)
        ]  # fmt: skip
        if not applicable:
            return web.Response(status=status, headers=headers, body=payload)
        name = rng.choices(applicable, weights=[self.weights[n] for n in applicable])[0]
        response, detail = await self._mutate(name, rng, request, route, status, headers, payload, doc)
        applied = AppliedMutation(
            seed=self.seed, index=index, method=request.method, path=request.path, mutation=name,
            detail=detail,
        )
        self.counts[name] += 1
        self.applied.append(applied)
        log.info("%s", applied)
        return response

    def _applies(
        self, name: str, doc: Any, request: web.Request, route: str, headers: Mapping[str, str]
    ) -> bool:
        if name in _JSON_MUTATIONS:
            if doc is _NOT_JSON:
                return False
            if name == "drop_key":
                return any(isinstance(c, dict) and c for c, _ in _nodes(doc))
            return True
        if name == "repeat_page":
            return (
                route != _raw_key(request.method, request.path_qs)
                or "Link" in headers
                or isinstance(doc, list)
            )
        return True

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
        if self._client is None:
            self._client = aiohttp.ClientSession(auto_decompress=True)
        out = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            async with self._client.request(
                request.method, self.upstream + request.path_qs, headers=out, data=body or None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                headers: CIMultiDict[str] = CIMultiDict(
                    (k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                )
                status = upstream.status
        except aiohttp.ClientError as exc:
            return 502, CIMultiDict({"Content-Type": "text/plain"}), f"proxy: upstream failed: {exc}".encode()
        for name in ("Link", "Location", "Content-Location"):
            if name in headers:
                values = [v.replace(self.upstream, self.origin) for v in headers.getall(name)]
                del headers[name]
                for value in values:
                    headers.add(name, value)
        return status, headers, payload.replace(self.upstream.encode(), self.origin.encode())

    async def _mutate(
        self,
        name: str,
        rng: random.Random,
        request: web.Request,
        route: str,
        status: int,
        headers: CIMultiDict[str],
        payload: bytes,
        doc: Any,
    ) -> tuple[web.StreamResponse, str]:
        if name in _JSON_MUTATIONS:
            if name == "deep_nesting":
                return self._deep(rng, status, headers, doc)
            mutated, detail = _mutate_json(name, rng, doc)
            text = json.dumps(mutated, allow_nan=True)
            return web.Response(status=status, headers=headers, body=text.encode()), detail
        if name == "truncated_body":
            cut = rng.randint(0, max(0, len(payload) - 1))
            truncated = web.Response(status=status, headers=headers, body=payload[:cut])
            return truncated, f"{cut} of {len(payload)}"
        if name == "invalid_body":
            choices = (
                b"\xff\xfe\x00\x81not json",
                b"{'single': 'quotes', }",
                b"undefined",
                b"[1, 2,, 3]",
                b'{"a": 1}{"b": 2}',
                bytes(rng.randrange(256) for _ in range(64)),
            )
            pick = rng.randrange(len(choices))
            return web.Response(status=status, headers=headers, body=choices[pick]), f"variant {pick}"
        if name == "empty_body":
            return web.Response(status=status, headers=headers, body=b""), ""
        if name == "html_error_page":
            code = rng.choice((200, 500, 502, 503))
            reason = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            html = _HTML_PAGE.format(status=code, reason=reason[code])
            return web.Response(status=code, text=html, content_type="text/html"), f"HTTP {code}"
        if name == "wrong_content_type":
            kind = rng.choice(("text/html; charset=utf-8", "application/xml", "application/octet-stream"))
            headers = CIMultiDict(headers)
            headers.popall("Content-Type", None)
            headers["Content-Type"] = kind
            return web.Response(status=status, headers=headers, body=payload), kind
        if name == "giant_body":
            return await self._giant(rng, request, headers)
        if name == "cut_connection":
            return await self._cut(rng, request, status, headers, payload)
        if name == "repeat_page":
            return self._repeat(request, route, status, headers, payload)
        if name == "foreign_link":
            assert self.witness is not None
            target = f"{self.witness.url}{request.path}?next=fuzz{rng.randrange(10**6)}"
            headers = CIMultiDict(headers)
            headers.popall("Link", None)
            headers["Link"] = f'<{target}>; rel="next"'
            return web.Response(status=status, headers=headers, body=payload), target
        if name == "redirect_to_witness":
            assert self.witness is not None
            code = rng.choice((301, 302, 303, 307, 308))
            target = f"{self.witness.url}{request.path_qs}"
            return web.Response(status=code, headers={"Location": target}), f"HTTP {code} to {target}"
        raise AssertionError(name)  # pragma: no cover

    def _deep(
        self, rng: random.Random, status: int, headers: CIMultiDict[str], doc: Any
    ) -> tuple[web.StreamResponse, str]:
        depth = self.nesting_depth
        marker = "__lmsconnect_deep__"
        nodes = _nodes(doc)
        if nodes and rng.random() < 0.5:
            container, key = rng.choice(nodes)
            container[key] = marker
            where = f"at {_describe(key)}"
        else:
            doc = marker
            where = "as the whole body"
        text = json.dumps(doc).replace(f'"{marker}"', "[" * depth + "]" * depth, 1)
        return web.Response(status=status, headers=headers, body=text.encode()), f"{depth} levels {where}"

    async def _giant(
        self, rng: random.Random, request: web.Request, headers: CIMultiDict[str]
    ) -> tuple[web.StreamResponse, str]:
        total = self.giant_bytes
        declared = rng.random() < 0.5
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        if declared:
            response.content_length = total
        # A valid JSON list of one huge string: parsing it whole would hold the whole body again.
        chunk = b"x" * 65_536
        head, tail = b'["', b'"]'
        sent = len(head)
        try:
            await response.prepare(request)
            await response.write(head)
            while sent + len(chunk) + len(tail) <= total:
                await response.write(chunk)
                sent += len(chunk)
            await response.write(b"x" * (total - sent - len(tail)) + tail)
        except (ConnectionError, RuntimeError):
            pass  # the client gave up reading: what a bounded reader should do
        return response, f"{total:,} bytes, {'Content-Length declared' if declared else 'chunked'}"

    async def _cut(
        self,
        rng: random.Random,
        request: web.Request,
        status: int,
        headers: CIMultiDict[str],
        payload: bytes,
    ) -> tuple[web.StreamResponse, str]:
        response = web.StreamResponse(status=status)
        for key, value in headers.items():
            if key.lower() != "content-type":
                response.headers.add(key, value)
        response.content_type = headers.get("Content-Type", "application/json").split(";")[0]
        response.content_length = len(payload) + 1_000
        part = payload[: rng.randint(0, len(payload))]
        try:
            await response.prepare(request)
            await response.write(part)
        except (ConnectionError, RuntimeError):
            pass  # the client went away first (it gave up on the request): nothing to cut
        if request.transport is not None:
            request.transport.close()
        return response, f"closed after {len(part)} of {len(payload) + 1_000} declared bytes"

    def _repeat(
        self, request: web.Request, route: str, status: int, headers: CIMultiDict[str], payload: bytes
    ) -> tuple[web.StreamResponse, str]:
        headers = CIMultiDict(headers)
        if "Link" in headers or request.method == "GET":
            # The same page again, and a next link that points at it: a cursor that never advances.
            headers.popall("Link", None)
            headers["Link"] = f'<{self.origin}{request.path_qs}>; rel="next"'
        self._sticky[route] = _Sticky(status, headers, payload, self.stuck_requests)
        repeated = web.Response(status=status, headers=headers, body=payload)
        return repeated, f"for {self.stuck_requests} requests"


# -- JSON helpers ---------------------------------------------------------------------------------------

_NOT_JSON: Final = object()


def _json_or_none(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return _NOT_JSON


def _nodes(doc: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) slot in `doc`, depth first; mutating through them edits `doc` in place."""
    found: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        slots: Iterable[Any] = node.keys() if isinstance(node, dict) else range(len(node)) if isinstance(
            node, list
        ) else ()
        for key in slots:
            found.append((node, key))
            stack.append(node[key])
    return found


def _describe(key: Any) -> str:
    return f"key {key!r}" if isinstance(key, str) else f"index {key}"


def _wrong_type(rng: random.Random, value: Any) -> Any:
    # Never a bool for a number or a number for a bool: Python itself treats those as the same value.
    if isinstance(value, bool):
        return rng.choice(("yes", [value], {"value": value}))
    if isinstance(value, int | float):
        return rng.choice((str(value), [value], {"value": value}, "twelve"))
    if isinstance(value, str):
        options: list[Any] = [[value], {"value": value}, False, 3.5]
        if value.isdigit() and len(value) < 30:
            options.append(int(value))
        return rng.choice(options)
    if isinstance(value, list):
        return rng.choice(({"items": value}, "[]", 0, True))
    if isinstance(value, dict):
        return rng.choice(([value], "{}", 1, ""))
    return rng.choice(("null", 0, [], {}))


def _mutate_json(name: str, rng: random.Random, doc: Any) -> tuple[Any, str]:
    nodes = _nodes(doc)
    container: Any = None
    key: Any = None
    if name == "drop_key":
        container, key = rng.choice([(c, k) for c, k in nodes if isinstance(c, dict)])
        del container[key]
        return doc, f"dropped {_describe(key)}"
    if nodes:
        container, key = rng.choice(nodes)
    current = doc if container is None else container[key]
    if name == "wrong_type":
        new = _wrong_type(rng, current)
    elif name == "null_value":
        new = None
    elif name == "huge_number":
        new = rng.choice(_HUGE_NUMBERS)
    else:  # huge_string
        size = rng.choice((100_000, 1_000_000, 5_000_000))
        new = rng.choice(("9", "x", "é", "\u0000")) * size
    if container is None:
        where = "the whole body"
        doc = new
    else:
        where = _describe(key)
        container[key] = new
    long = isinstance(new, str | int) and len(str(new)) >= 40
    shown = f"{type(new).__name__} of {len(str(new)):,}" if long else repr(new)
    return doc, f"{where} -> {shown}"


# -- listing identity -----------------------------------------------------------------------------------

_PATH_PAGING: Final = re.compile(r"(?:^|(?<=[/,;]))(" + "|".join(sorted(_PAGING)) + r")([:=])\d+")


def _raw_key(method: str, path_qs: str) -> str:
    return f"{method} {path_qs}"


def _route_key(method: str, path_qs: str, body: bytes) -> str:
    """The request with its paging parameters blanked: the same listing, whatever page it asks for."""
    path, _, query = path_qs.partition("?")
    path = _PATH_PAGING.sub(r"\1\2", path)
    parts = [_strip_paging(urllib.parse.parse_qsl(query, keep_blank_values=True))]
    if body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            parts.append(hashlib.blake2b(body, digest_size=8).hexdigest())
        else:
            parts.append(_strip_paging(urllib.parse.parse_qsl(text, keep_blank_values=True)) or text)
    return f"{method} {path} " + " ".join(parts)


def _strip_paging(pairs: Sequence[tuple[str, str]]) -> str:
    # PHP-style option lists (Moodle): options[1][name]=limitfrom & options[1][value]=50
    named = {k[: -len("[name]")] for k, v in pairs if k.endswith("[name]") and v in _PAGING}
    kept = []
    for key, value in pairs:
        base = key.rsplit("[", 1)[-1].rstrip("]") if "[" in key else key
        if base in _PAGING or (key.endswith("[value]") and key[: -len("[value]")] in named):
            value = ""
        if key in ("wstoken",):
            continue
        kept.append(f"{key}={value}")
    return "&".join(kept)
