"""An aiohttp server that speaks the parts of 360Learning API v2 the connector uses."""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from aiohttp import web

from lmsconnect.testing import SimulatorServer

from ._state import (
    JSON,
    ApiError,
    Company,
    Filter,
    SimAttempt,
    SimCourse,
    SimUser,
    require,
)

__all__ = ["ALL_SCOPES", "Learning360Simulator"]

API_VERSION_HEADER = "360-api-version"
API_VERSION = "v2.0"
STATS_PATH = "/_simulator/stats"

ALL_SCOPES = frozenset(
    {
        "users:read",
        "users:write",
        "groups:read",
        "groups:write",
        "groups:bulk",
        "courses:read",
        "courses:write",
        "courseStats:read",
        "customFields:read",
        "paths:read",
        "paths:write",
        "pathStats:read",
        "integrations:read",
        "integrations:write",
        "integrations:bulk",
        "bulkOperations:read",
    }
)

# Fixed page sizes from the OpenAPI files; the API takes no page-size parameter.
PAGE_SIZES = {
    "users": 500,
    "courses": 500,
    "attempts": 500,
    "groups": 500,
    "memberships": 1000,
    "customFields": 1000,
    "pathStats": 2000,
    "integrations": 100,
    "operations": 20,
}
# Input caps of the bulk endpoints (400 inputTooLong beyond them).
BULK_CAPS = {
    "importExternalCourses": 10_000,
    "archiveExternalCourses": 1_000,
    "importExternalStatistics": 10_000,
}

Kind = Literal["token", "read", "write", "bulk"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_FILTERS: dict[str, dict[str, tuple[frozenset[str], Callable[[Any], Any]]]] = {
    "users": {
        "status": (frozenset({"eq", "ne", "in", "nin"}), lambda u: u.status),
        "mail": (frozenset({"eq", "ne", "in", "nin"}), lambda u: u.mail),
        "username": (frozenset({"eq", "ne", "in", "nin"}), lambda u: u.username),
    },
    "courses": {
        "status": (frozenset({"eq", "ne", "in", "nin"}), lambda c: c.status),
        "type": (frozenset({"eq"}), lambda c: c.type),
        "groupId": (frozenset({"eq"}), lambda c: c.group_id),
        "authorId": (frozenset({"eq", "ne", "in", "nin"}), lambda c: c.author_id),
        "sourceLang": (frozenset({"eq", "ne", "in", "nin"}), lambda c: c.default_lang),
        "createdAt": (frozenset({"lt", "gte"}), lambda c: c.created_at),
        "modifiedAt": (frozenset({"lt", "gte"}), lambda c: c.modified_at),
    },
    "attempts": {
        "userId": (frozenset({"eq", "ne", "in", "nin"}), lambda a: a.user_id),
        "courseId": (frozenset({"eq", "ne", "in", "nin"}), lambda a: a.course_id),
        "completedAt": (frozenset({"lt", "gte"}), lambda a: a.completed_at),
    },
    "groups": {},
    "memberships": {},
    "customFields": {},
    "pathStats": {
        "userId": (frozenset({"eq", "ne", "in", "nin"}), lambda p: p.user_id),
        "pathId": (frozenset({"eq", "ne", "in", "nin"}), lambda p: p.path_id),
    },
    "integrations": {"externalPlatform": (frozenset({"eq"}), lambda i: i.external_platform)},
    "operations": {},
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _error(error: ApiError) -> web.Response:
    return _json(error.body(), status=error.status)


def _encode_cursor(after: str, filters: list[Filter]) -> str:
    raw = json.dumps({"a": after, "f": [[f, op, list(v)] for f, op, v in filters]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[str, list[Filter]]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(raw["a"]), [(str(f), str(op), tuple(str(x) for x in v)) for f, op, v in raw["f"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError(400, "invalidInput", "invalid pagination token") from exc


class Learning360Simulator(SimulatorServer):
    """A 360Learning platform on loopback, for tests, demos and benchmarks.

    ```python
    async with Learning360Simulator(users=50, courses=10, enrollments=200, processing_delay=0.2) as sim:
        async with lmsconnect.connect("360learning", **sim.connect_config) as lms:
            async for user in lms.users():
                ...
    ```

    What is real about it (sources in ``docs/360learning-setup.md``): ``POST /api/v2/oauth2/token``
    (client credentials, tokens that expire after ``token_lifetime`` seconds, 401
    ``{"error": "invalid_token"}`` afterwards); the ``360-api-version: v2.0`` header on every API call;
    bare JSON arrays paged by a ``Link: <...?next=...>; rel="next"`` cursor with the vendor's fixed page
    sizes; LHS-bracket filters (``status[eq]=active``); 50 GET/s and 10 writes/s per company, 429
    ``{"error": "tooManyRequests"}`` beyond; at most 3 running bulk operations (429
    ``bulkOperationsConcurrencyLimitReached``); bulk submissions answer 202 with a ``Location`` and take
    effect only when the operation completes, ``processing_delay`` seconds later; archived courses,
    restorable; integrations ("course providers") and built-in content platforms that appear only on
    courses; per-scope 403 ``invalid_scope``.

    Counters (``calls``, ``calls_by_route``, ``rejected_calls``, ``tokens_issued``) are attributes, and are
    also served at ``GET /_simulator/stats`` (not counted) for a simulator run out of process.

    Faults are opt-in and deterministic for a ``fault_seed``: each request is keyed by its method, path
    and query and by how often that key was seen, so a retry draws again but the same run draws the
    same faults whatever the interleaving.
    """

    option_help: ClassVar[Mapping[str, str]] = {
        "providers": "number of integrations (course providers) in the generated company",
        "archived_share": "share of courses (0-1) generated archived",
        "client_id": "the OAuth2 client id the simulator accepts",
        "client_secret": "the OAuth2 client secret the simulator accepts",
        "token_lifetime": "seconds an access token lives; afterwards calls get 401 invalid_token",
        "expires_in_as_string": "true: the token answer gives expires_in as a string",
        "scopes": "scopes granted, comma-separated (default: all); others answer 403 invalid_scope",
        "rate_limits": "false: no 429s at all",
        "read_limit": "GET calls allowed per rate_window (360Learning: 50)",
        "write_limit": "write calls allowed per rate_window (360Learning: 10)",
        "rate_window": "seconds of the rate window (1)",
        "max_running_bulk_operations": "bulk operations running at once before a 429 (3)",
        "processing_delay": "seconds before a bulk operation (enrolment, completion) takes effect",
        "link_style": "'absolute' or 'relative' next-page URLs in Link headers",
        "bulk_api_enabled": "false: bulk operations are refused",
        "fault_rate": "share of calls (0-1) answered with a 500",
        "throttle_rate": "share of calls (0-1) answered with a 429",
        "drop_rate": "share of calls (0-1) whose connection is closed without an answer",
        "slow_rate": "share of calls (0-1) delayed by slow_delay",
        "slow_delay": "delay of a slow call, in seconds",
        "fault_seed": "seed of the fault draws: the same seed gives the same faults",
        "fault_methods": "HTTP methods faults apply to, comma-separated (default: GET)",
    }

    def __init__(
        self,
        *,
        users: int = 200,
        courses: int = 40,
        enrollments: int = 1_000,
        seed: int = 0,
        latency: float = 0.0,
        providers: int = 3,
        archived_share: float = 0.05,
        client_id: str = "sim-client-id",
        client_secret: str = "sim-client-secret",
        token_lifetime: float = 3600.0,
        expires_in_as_string: bool = False,
        scopes: Iterable[str] | None = None,
        rate_limits: bool = True,
        read_limit: int = 50,
        write_limit: int = 10,
        rate_window: float = 1.0,
        max_running_bulk_operations: int = 3,
        processing_delay: float = 2.0,
        link_style: Literal["absolute", "relative"] = "absolute",
        bulk_api_enabled: bool = True,
        fault_rate: float = 0.0,
        throttle_rate: float = 0.0,
        drop_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_delay: float = 1.0,
        fault_seed: int = 0,
        fault_methods: Iterable[str] = ("GET",),
    ) -> None:
        self.company = Company(seed=seed, processing_delay=processing_delay)
        self.company.generate(
            users=users,
            courses=courses,
            enrollments=enrollments,
            providers=providers,
            archived_share=archived_share,
        )
        self.seed = seed
        self.latency = latency
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.expires_in_as_string = expires_in_as_string
        self.scopes = frozenset(ALL_SCOPES if scopes is None else scopes)
        self.rate_limits = rate_limits
        self.read_limit = read_limit
        self.write_limit = write_limit
        self.rate_window = rate_window
        self.max_running_bulk_operations = max_running_bulk_operations
        self.link_style = link_style
        self.bulk_api_enabled = bulk_api_enabled
        self.fault_rate = fault_rate
        self.throttle_rate = throttle_rate
        self.drop_rate = drop_rate
        self.slow_rate = slow_rate
        self.slow_delay = slow_delay
        self.fault_seed = fault_seed
        self.fault_methods = frozenset(m.upper() for m in fault_methods)

        self.calls = 0
        self.calls_by_route: collections.Counter[str] = collections.Counter()
        self.rejected_calls = 0
        self.faults_injected: collections.Counter[str] = collections.Counter()
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}
        self._token_rng = random.Random(f"360learning-tokens-{seed}")
        self._windows: dict[str, collections.deque[float]] = {
            "read": collections.deque(),
            "write": collections.deque(),
        }
        self._fault_keys: collections.Counter[str] = collections.Counter()
        self._route_kinds = {
            (method, path): (kind, scope) for method, path, _h, kind, scope in self._routes()
        }

    # lifecycle -------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(STATS_PATH, self._stats_route)
        for method, path, handler, _kind, _scope in self._routes():
            app.router.add_route(method, path, handler)
        return app

    @property
    def connect_config(self) -> dict[str, Any]:
        """What ``lmsconnect.connect("360learning", **config)`` needs to reach this simulator."""
        return {
            "base_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "integration_id": self.company.own_integration_id,
        }

    # the simulator's own API ---------------------------------------------------------------

    @property
    def processing_delay(self) -> float:
        return self.company.processing_delay

    @processing_delay.setter
    def processing_delay(self, seconds: float) -> None:
        self.company.processing_delay = seconds

    @property
    def own_integration_id(self) -> str:
        """The integration seeded for the connector's writes (``connect_config["integration_id"]``)."""
        return self.company.own_integration_id

    def expire_tokens(self) -> None:
        """Make every issued token expire now, as if an hour had passed."""
        self._tokens.clear()

    def process_bulk_operations(self) -> int:
        """Finish every pending bulk operation now, whatever its delay; returns how many ran."""
        return self.company.advance(force=True)

    def stats(self) -> dict[str, Any]:
        """Counters and sizes, also served (unauthenticated, uncounted) at ``GET /_simulator/stats``."""
        company = self.company
        return {
            "calls": self.calls,
            "calls_by_route": dict(self.calls_by_route),
            "rejected_calls": self.rejected_calls,
            "tokens_issued": self.tokens_issued,
            "faults_injected": dict(self.faults_injected),
            "limits": {
                "read_limit": self.read_limit,
                "write_limit": self.write_limit,
                "rate_window": self.rate_window,
            },
            "counts": {
                "users": len(company.users),
                "groups": len(company.groups),
                "memberships": sum(len(m) for m in company.memberships.values()),
                "integrations": len(company.integrations),
                "courses": len(company.courses),
                "external_courses": sum(1 for c in company.courses.values() if c.type == "external"),
                "attempts": len(company.attempts),
                "path_stats": len(company.path_stats),
                "bulk_operations": len(company.operations),
            },
        }

    def reset_counters(self) -> None:
        self.calls = 0
        self.calls_by_route.clear()
        self.rejected_calls = 0
        self.faults_injected.clear()

    def add_user(self, *, first_name: str, last_name: str, mail: str, status: str = "active") -> SimUser:
        return self.company.add_user(first_name=first_name, last_name=last_name, mail=mail, status=status)

    def remove_user(self, user_id: str) -> None:
        """Delete a user the way 360Learning does: the record stays, with status ``deleted``."""
        self.company.users[user_id].status = "deleted"

    def course(self, course_id: str) -> SimCourse:
        return self.company.courses[course_id]

    def attempts(self, *, user_id: str | None = None, course_id: str | None = None) -> list[SimAttempt]:
        """Attempts as the API would list them now (bulk operations whose delay has passed are applied)."""
        self.company.advance()
        return list(self.company.attempts_of(user_id=user_id, course_id=course_id))

    # routing -------------------------------------------------------------------------------

    def _routes(self) -> list[tuple[str, str, Handler, Kind, str | None]]:
        v2 = "/api/v2"
        return [
            ("POST", f"{v2}/oauth2/token", self._token, "token", None),
            ("GET", f"{v2}/users", self._list_users, "read", "users:read"),
            ("GET", f"{v2}/users/{{userId}}", self._get_user, "read", "users:read"),
            (
                "GET",
                f"{v2}/users/{{userId}}/custom-fields/values",
                self._get_user_custom_values,
                "read",
                "users:read",
            ),
            ("GET", f"{v2}/custom-fields", self._list_custom_fields, "read", "customFields:read"),
            ("GET", f"{v2}/paths/stats", self._list_path_stats, "read", "pathStats:read"),
            ("GET", f"{v2}/groups", self._list_groups, "read", "groups:read"),
            ("GET", f"{v2}/groups/{{groupId}}/roles", self._list_group_roles, "read", "groups:read"),
            ("GET", f"{v2}/integrations", self._list_integrations, "read", "integrations:read"),
            ("POST", f"{v2}/integrations", self._create_integration, "write", "integrations:write"),
            (
                "GET",
                f"{v2}/integrations/{{integrationId}}",
                self._get_integration,
                "read",
                "integrations:read",
            ),
            (
                "GET",
                f"{v2}/integrations/{{integrationId}}/courses/{{externalId}}",
                self._get_external_course,
                "read",
                "integrations:read",
            ),
            ("GET", f"{v2}/courses", self._list_courses, "read", "courses:read"),
            ("GET", f"{v2}/courses/stats", self._list_stats, "read", "courseStats:read"),
            ("GET", f"{v2}/courses/{{courseId}}", self._get_course, "read", "courses:read"),
            ("PUT", f"{v2}/courses/{{courseId}}/archive", self._archive_course, "write", "courses:write"),
            (
                "PUT",
                f"{v2}/bulk/integrations/{{integrationId}}/courses",
                self._bulk_import_courses,
                "bulk",
                "integrations:bulk",
            ),
            (
                "DELETE",
                f"{v2}/bulk/integrations/{{integrationId}}/courses",
                self._bulk_archive_courses,
                "bulk",
                "integrations:bulk",
            ),
            (
                "POST",
                f"{v2}/bulk/integrations/{{integrationId}}/stats",
                self._bulk_import_stats,
                "bulk",
                "integrations:bulk",
            ),
            ("GET", f"{v2}/bulk/operations", self._list_operations, "read", "bulkOperations:read"),
            (
                "GET",
                f"{v2}/bulk/operations/{{bulkOperationId}}",
                self._get_operation,
                "read",
                "bulkOperations:read",
            ),
            (
                "GET",
                f"{v2}/bulk/operations/{{bulkOperationId}}/results",
                self._get_results,
                "read",
                "bulkOperations:read",
            ),
        ]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == STATS_PATH:
            # The simulator's own counters, for a process that runs it out of process (the CLI): not an
            # API call, so not counted, limited or delayed.
            return _json(self.stats())
        self.calls += 1
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else request.path
        route = f"{request.method} {canonical}"
        self.calls_by_route[route] = self.calls_by_route[route] + 1
        kind, scope = self._route_kinds.get((request.method, canonical), ("read", None))
        response = await self._guarded(request, handler, kind, scope)
        if response.status == 429:
            self.rejected_calls += 1
        return response

    async def _guarded(
        self, request: web.Request, handler: Handler, kind: Kind, scope: str | None
    ) -> web.StreamResponse:
        # Faults, auth and rate limits are decided when the request arrives (that is when the vendor
        # counts it); the latency is spent before answering, whatever the answer.
        fault = self._draw_fault(request) if kind != "token" else None
        refusal: ApiError | None = None
        if fault is None and kind != "token":
            try:
                self._authenticate(request, scope)
                self._check_rate(kind)
            except ApiError as error:
                refusal = error
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if fault == "drop":
            # Close the socket without answering, like a load balancer that gives up.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        if fault == "500":
            return _json({"error": {"code": "internalServerError", "message": "simulated fault"}}, 500)
        if fault == "429":
            return _json({"error": "tooManyRequests"}, 429)
        if fault == "slow":
            await asyncio.sleep(self.slow_delay)
        if refusal is not None:
            return _error(refusal)
        try:
            self.company.advance()
            return await handler(request)
        except ApiError as error:
            return _error(error)

    def _draw_fault(self, request: web.Request) -> str | None:
        rates = (
            ("500", self.fault_rate),
            ("429", self.throttle_rate),
            ("drop", self.drop_rate),
            ("slow", self.slow_rate),
        )
        if request.method not in self.fault_methods or not any(rate > 0 for _, rate in rates):
            return None
        key = f"{request.method} {request.path_qs}"
        self._fault_keys[key] += 1
        roll = random.Random(f"{self.fault_seed}|{key}|{self._fault_keys[key]}").random()
        threshold = 0.0
        for fault, rate in rates:
            threshold += rate
            if roll < threshold:
                self.faults_injected[fault] += 1
                return fault
        return None

    def _authenticate(self, request: web.Request, scope: str | None) -> None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        expires = self._tokens.get(token)
        if not token or expires is None or expires <= time.monotonic():
            self._tokens.pop(token, None)
            raise ApiError(401, "invalid_token", flat=True)
        if request.headers.get(API_VERSION_HEADER) != API_VERSION:
            raise ApiError(
                400, "invalidInput", f"header {API_VERSION_HEADER} is required and must be {API_VERSION!r}"
            )
        if scope is not None and scope not in self.scopes:
            raise ApiError(403, "invalid_scope", f"this operation requires the {scope} scope")

    def _check_rate(self, kind: Kind) -> None:
        if not self.rate_limits or kind not in ("read", "write"):
            return
        window = self._windows[kind]
        now = time.monotonic()
        while window and window[0] <= now - self.rate_window:
            window.popleft()
        if len(window) >= (self.read_limit if kind == "read" else self.write_limit):
            raise ApiError(429, "tooManyRequests", flat=True)
        window.append(now)

    # helpers -------------------------------------------------------------------------------

    def _filters(self, request: web.Request, collection: str) -> list[Filter]:
        known = _FILTERS[collection]
        grouped: dict[tuple[str, str], list[str]] = {}
        for key, value in request.query.items():
            if key == "next":
                continue
            field, _, rest = key.partition("[")
            op = rest.split("]", 1)[0] if rest else ""
            if field not in known or op not in known[field][0]:
                raise ApiError(400, "invalidInput", f"unsupported filter {key!r}")
            values = grouped.setdefault((field, op), [])
            # Both repeated keys (x[in]=a&x[in]=b) and comma lists are accepted: the API reference
            # does not say which form it expects.
            if op in ("in", "nin"):
                values.extend(v for v in value.split(",") if v)
            else:
                values.append(value)
        return [(field, op, tuple(values)) for (field, op), values in grouped.items()]

    def _paged(
        self,
        request: web.Request,
        collection: str,
        records: Mapping[str, Any],
        render: Callable[[Any], JSON],
        *,
        kind: str | None = None,
    ) -> web.Response:
        """One page of `collection`; `kind` names its page size and filters when they are shared by
        several collections (each group's memberships)."""
        kind = kind or collection
        token = request.query.get("next")
        if token:
            after, filters = _decode_cursor(token)
        else:
            after, filters = None, self._filters(request, kind)
        getters = {field: getter for field, (_ops, getter) in _FILTERS[kind].items()}
        page, last = self.company.page(
            collection, records, filters, getters, after=after, size=PAGE_SIZES[kind]
        )
        headers: dict[str, str] = {}
        if last is not None:
            target = f"{request.path}?next={quote(_encode_cursor(last, filters))}"
            if self.link_style == "absolute":
                target = f"{self.url}{target}"
            headers["Link"] = f'<{target}>; rel="next"'
        return _json([render(record) for record in page], headers=headers)

    async def _body(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError as exc:
            raise ApiError(400, "invalidInput", "the body is not valid JSON") from exc

    def _bulk_items(self, body: Any, kind: str) -> list[JSON]:
        if not isinstance(body, dict) or not isinstance(body.get("input"), list) or not body["input"]:
            raise ApiError(400, "invalidInput", 'the body must be {"input": [ ... ]} with at least one item')
        items: list[JSON] = body["input"]
        if len(items) > BULK_CAPS[kind]:
            raise ApiError(400, "inputTooLong", f"at most {BULK_CAPS[kind]} items per call")
        if not all(isinstance(item, dict) for item in items):
            raise ApiError(400, "invalidInput", "every input item must be an object")
        return items

    def _accept(self, kind: str, integration_id: str, items: list[JSON]) -> web.Response:
        if not self.bulk_api_enabled:
            raise ApiError(503, "bulkAPIDisabled", "the Bulk API is disabled for this platform")
        self.company.integration(integration_id)
        if self.company.running_operations() >= self.max_running_bulk_operations:
            raise ApiError(
                429,
                "bulkOperationsConcurrencyLimitReached",
                f"at most {self.max_running_bulk_operations} bulk operations may run at once",
            )
        operation = self.company.submit(kind, integration_id, items)
        location = f"{self.url}/api/v2/bulk/operations/{operation.id}"
        return web.Response(status=202, headers={"Location": location})

    # handlers ------------------------------------------------------------------------------

    async def _stats_route(self, request: web.Request) -> web.Response:
        return _json(self.stats())  # answered by the middleware; the route makes the path exist

    async def _token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("grant_type"), str):
            return _json({"error": "invalid_request"}, 400)
        if body["grant_type"] != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return _json({"error": "invalid_client"}, 401)
        self.tokens_issued += 1
        token = f"sim360.{self.tokens_issued}.{self._token_rng.getrandbits(128):032x}"
        self._tokens[token] = time.monotonic() + self.token_lifetime
        lifetime = int(self.token_lifetime)
        return _json(
            {
                "token_type": "Bearer",
                "access_token": token,
                "expires_in": str(lifetime) if self.expires_in_as_string else lifetime,
            }
        )

    async def _list_users(self, request: web.Request) -> web.Response:
        return self._paged(request, "users", self.company.users, SimUser.to_json)

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.company.users.get(request.match_info["userId"])
        if user is None:
            raise ApiError(404, "userNotFound", "user not found")
        return _json(user.to_json())

    async def _get_user_custom_values(self, request: web.Request) -> web.Response:
        user_id = request.match_info["userId"]
        if user_id not in self.company.users:
            raise ApiError(404, "userNotFound", "user not found")
        fields = self.company.custom_fields
        values = self.company.user_custom_values.get(user_id, {})
        return _json(
            [
                {"customFieldId": field_id, "type": fields[field_id].type, "value": value}
                for field_id, value in values.items()
            ]
        )

    async def _list_custom_fields(self, request: web.Request) -> web.Response:
        return self._paged(request, "customFields", self.company.custom_fields, lambda f: f.to_json())

    async def _list_path_stats(self, request: web.Request) -> web.Response:
        return self._paged(request, "pathStats", self.company.path_stats, lambda p: p.to_json())

    async def _list_groups(self, request: web.Request) -> web.Response:
        return self._paged(request, "groups", self.company.groups, lambda g: g.to_json())

    async def _list_group_roles(self, request: web.Request) -> web.Response:
        group_id = request.match_info["groupId"]
        if group_id not in self.company.groups:
            raise ApiError(404, "groupNotFound", "group not found")
        return self._paged(
            request,
            f"roles:{group_id}",
            self.company.memberships.get(group_id, {}),
            lambda m: m.to_json(),
            kind="memberships",
        )

    async def _list_integrations(self, request: web.Request) -> web.Response:
        return self._paged(request, "integrations", self.company.integrations, lambda i: i.to_json())

    async def _create_integration(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "invalidInput", "the body must be an object")
        return _json(self.company.create_integration(body).to_json(), 201)

    async def _get_integration(self, request: web.Request) -> web.Response:
        return _json(self.company.integration(request.match_info["integrationId"]).to_json())

    async def _get_external_course(self, request: web.Request) -> web.Response:
        course = self.company.external_course(
            request.match_info["integrationId"], request.match_info["externalId"]
        )
        return _json(course.external_json())

    async def _list_courses(self, request: web.Request) -> web.Response:
        return self._paged(request, "courses", self.company.courses, SimCourse.to_json)

    async def _get_course(self, request: web.Request) -> web.Response:
        return _json(self.company.course(request.match_info["courseId"]).to_json())

    async def _archive_course(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("archived"), bool):
            raise ApiError(400, "invalidInput", 'the body must be {"archived": true|false}')
        return _json(self.company.set_archived(request.match_info["courseId"], body["archived"]).to_json())

    async def _list_stats(self, request: web.Request) -> web.Response:
        return self._paged(request, "attempts", self.company.attempts, SimAttempt.to_json)

    async def _bulk_import_courses(self, request: web.Request) -> web.Response:
        items = self._bulk_items(await self._body(request), "importExternalCourses")
        for index, item in enumerate(items):
            require(item, ("externalId", "name", "launchUrl", "defaultLang"), f"input[{index}]")
            if not isinstance(item.get("sources"), list) or not isinstance(item.get("subjects"), list):
                raise ApiError(400, "invalidInput", f"input[{index}]: sources and subjects must be arrays")
            duration = item.get("duration")
            if duration is not None and (not isinstance(duration, int) or not 1 <= duration <= 100_000):
                raise ApiError(400, "invalidInput", f"input[{index}].duration must be an integer 1..100000")
        return self._accept("importExternalCourses", request.match_info["integrationId"], items)

    async def _bulk_archive_courses(self, request: web.Request) -> web.Response:
        items = self._bulk_items(await self._body(request), "archiveExternalCourses")
        for index, item in enumerate(items):
            require(item, ("externalId",), f"input[{index}]")
        return self._accept("archiveExternalCourses", request.match_info["integrationId"], items)

    async def _bulk_import_stats(self, request: web.Request) -> web.Response:
        items = self._bulk_items(await self._body(request), "importExternalStatistics")
        for index, item in enumerate(items):
            where = f"input[{index}]"
            require(
                item,
                (
                    "courseIdentifier",
                    "userIdentifier",
                    "progress",
                    "timeSpent",
                    "firstActivityAt",
                    "lastActivityAt",
                ),
                where,
            )
            for key, kinds in (
                ("courseIdentifier", ("externalId", "internalId")),
                ("userIdentifier", ("mail", "internalId")),
            ):
                ident = item[key]
                if not isinstance(ident, dict) or ident.get("type") not in kinds or not ident.get("value"):
                    raise ApiError(
                        400, "invalidInput", f"{where}.{key} must be {{type: {'|'.join(kinds)}, value}}"
                    )
            if not isinstance(item["progress"], int) or not 0 <= item["progress"] <= 100:
                raise ApiError(400, "invalidInput", f"{where}.progress must be an integer 0..100")
            score = item.get("score")
            if score is not None and (not isinstance(score, int) or not 0 <= score <= 100):
                raise ApiError(400, "invalidInput", f"{where}.score must be an integer 0..100")
            if not isinstance(item["timeSpent"], int) or item["timeSpent"] < 1:
                raise ApiError(400, "invalidInput", f"{where}.timeSpent must be an integer >= 1")
        return self._accept("importExternalStatistics", request.match_info["integrationId"], items)

    async def _list_operations(self, request: web.Request) -> web.Response:
        now = self.company.clock()
        return self._paged(request, "operations", self.company.operations, lambda op: op.to_json(now))

    async def _get_operation(self, request: web.Request) -> web.Response:
        operation = self.company.operations.get(request.match_info["bulkOperationId"])
        if operation is None:
            raise ApiError(404, "bulkOperationNotFound", "bulk operation not found")
        return _json(operation.to_json(self.company.clock()))

    async def _get_results(self, request: web.Request) -> web.Response:
        operation = self.company.operations.get(request.match_info["bulkOperationId"])
        if operation is None:
            raise ApiError(404, "bulkOperationNotFound", "bulk operation not found")
        if operation.results is None:
            raise ApiError(400, "bulkOperationNotRun", "the bulk operation has not run yet")
        return _json(operation.results)
