"""The 360Learning connector: API v2 with OAuth2 client credentials, Link pagination and bulk operations."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import attrs

from lmsconnect import (
    ActionFailed,
    ActionResult,
    AuthenticationError,
    CompleteCourse,
    ConfigurationError,
    Course,
    CourseProgression,
    CourseProvider,
    CourseRevision,
    DeactivateCourse,
    EnrollUser,
    InvalidInput,
    InvalidRemoteResponse,
    ItemError,
    ItemResult,
    ItemStatus,
    LMSConnectError,
    NotFound,
    PermissionDenied,
    ProgressionStatus,
    RateLimited,
    RevisionStatus,
    UpsertCourseItem,
    UpsertCourses,
    User,
    UserStatus,
)
from lmsconnect.plugin import (
    CheckItem,
    CheckStatus,
    Connector,
    ConnectorSpec,
    HttpClient,
    PageGuard,
    RateBudget,
    RateWindow,
    Response,
    Secret,
    config_field,
    default_error,
    next_link,
    stream_map,
    structure_wire,
)

from ._auth import TokenCache
from ._capabilities import CAPABILITIES, COMPLETION_NOTE, ENROLLMENT_NOTE
from ._wire import (
    AccessTokenDTO,
    BulkOperationDTO,
    BulkResultDTO,
    CourseDTO,
    CourseStatDTO,
    ExternalCourseDTO,
    IntegrationDTO,
    UserDTO,
    is_remote_id,
    make_wire_converter,
)

__all__ = ["REGIONS", "Learning360Config", "Learning360Connector"]

SLUG = "360learning"
API_VERSION = "v2.0"
VERSION_HEADER = "360-api-version"
TOKEN_PATH = "/api/v2/oauth2/token"
REGIONS: Mapping[str, str] = {"eu": "https://app.360learning.com", "us": "https://app.us.360learning.com"}

USERS = "/api/v2/users"
COURSES = "/api/v2/courses"
STATS = "/api/v2/courses/stats"
INTEGRATIONS = "/api/v2/integrations"
OPERATIONS = "/api/v2/bulk/operations"
# The paths with an id that could pass for a word (an integration's name, a course's external id), for
# telemetry's route templates; static paths first (HttpClient.route_of).
ROUTES = (
    STATS,
    f"{INTEGRATIONS}/{{integration_id}}",
    f"{INTEGRATIONS}/{{integration_id}}/courses/{{external_id}}",
    "/api/v2/bulk/integrations/{integration_id}/courses",
    "/api/v2/bulk/integrations/{integration_id}/stats",
    f"{OPERATIONS}/{{operation_id}}",
    f"{OPERATIONS}/{{operation_id}}/results",
    f"{COURSES}/{{course_id}}",
    f"{COURSES}/{{course_id}}/archive",
)

# Input caps of the bulk endpoints, from the OpenAPI files.
MAX_IMPORT_COURSES = 10_000
#: An external course's duration, in minutes: 360Learning takes 1 to 100,000 (the bulk import's schema).
MAX_DURATION_MINUTES: Final = 100_000
# Polling a bulk operation backs off to this interval at most.
MAX_POLL_INTERVAL_S = 5.0
# Submitting a bulk operation when three are running gets 429 bulkOperationsConcurrencyLimitReached;
# that request was not applied, so it is safe to send again.
BULK_SUBMIT_ATTEMPTS = 8

REFERENCE_CACHE_SIZE = 50_000
# Accepted items remembered for wait_until_visible().
MAX_PENDING = 10_000
# Records handed out between two returns to the event loop while a page is consumed.
YIELD_EVERY = 50

_T = TypeVar("_T")

COURSE_NOT_IN_INTEGRATION = "LMS.COURSE_NOT_IN_INTEGRATION"
BULK_OPERATION_FAILED = "REMOTE.BULK_OPERATION_FAILED"
BULK_ITEM_FAILED = "REMOTE.BULK_ITEM_FAILED"

# The OAuth scope each route needs, to name a missing one in PermissionDenied (first match wins).
_SCOPES: tuple[tuple[frozenset[str], re.Pattern[str], str], ...] = tuple(
    (frozenset(methods.split()), re.compile(pattern), scope)
    for methods, pattern, scope in (
        ("GET", r"^/api/v2/users(/|$)", "users:read"),
        ("POST PATCH PUT DELETE", r"^/api/v2/users(/|$)", "users:write"),
        ("GET", r"^/api/v2/courses/stats$", "courseStats:read"),
        ("GET", r"^/api/v2/courses(/|$)", "courses:read"),
        ("POST PATCH PUT DELETE", r"^/api/v2/courses(/|$)", "courses:write"),
        ("POST PATCH PUT DELETE", r"^/api/v2/bulk/integrations/", "integrations:bulk"),
        ("POST PATCH PUT DELETE", r"^/api/v2/bulk/groups/", "groups:bulk"),
        ("GET", r"^/api/v2/bulk/operations(/|$)", "bulkOperations:read"),
        ("GET", r"^/api/v2/integrations(/|$)", "integrations:read"),
        ("POST PATCH PUT DELETE", r"^/api/v2/integrations(/|$)", "integrations:write"),
        ("GET", r"^/api/v2/groups(/|$)", "groups:read"),
        ("POST PATCH PUT DELETE", r"^/api/v2/groups(/|$)", "groups:write"),
        ("GET", r"^/api/v2/paths(/|$)", "paths:read"),
        ("POST PATCH PUT DELETE", r"^/api/v2/paths(/|$)", "paths:write"),
    )
)


def scope_for(method: str, url: str) -> str | None:
    """The 360Learning OAuth scope a call needs, when known."""
    path = urlsplit(url).path
    for methods, pattern, scope in _SCOPES:
        if method.upper() in methods and pattern.search(path):
            return scope
    return None


@attrs.frozen(kw_only=True)
class Learning360Config:
    """How to reach one 360Learning platform."""

    client_id: str = config_field(
        help="API v2 client ID (a platform admin creates it in the API v2 admin panel)",
        example="5f0c3c0e7d7c1a0012345678",
    )
    client_secret: Secret = config_field(help="API v2 client secret, shown once at creation", secret=True)
    region: str = config_field(
        default="eu",
        help="Where the platform is hosted: eu (app.360learning.com) or us (app.us.360learning.com); "
        "ignored when base_url is set",
    )
    base_url: str | None = config_field(
        default=None,
        help="API host overriding region (a proxy, or the simulator)",
        example="http://127.0.0.1:8360",
    )
    integration_id: str | None = config_field(
        default=None,
        help="The API-based integration that upsert_courses, enroll_user and complete_course write through "
        "(GET /api/v2/integrations lists them)",
    )
    web_url: str | None = config_field(
        default=None,
        help="The platform's web address, for course remote_url (e.g. https://acme.360learning.com); "
        "defaults to the API host",
    )
    default_language: str = config_field(
        default="en", help="defaultLang of upserted courses given no languages"
    )
    reads_per_second: int = config_field(default=50, help="GET budget; 360Learning allows 50 per second")
    writes_per_second: int = config_field(default=10, help="Write budget; 360Learning allows 10 per second")
    poll_interval_s: float = config_field(
        default=1.0, help="First interval between polls of a bulk operation (doubling up to 5 s)"
    )
    upsert_timeout_s: float = config_field(
        default=120.0, help="How long upsert_courses waits for 360Learning to process its bulk import"
    )
    wait_for_processing_s: float = config_field(
        default=0.0,
        help="If > 0, enroll_user and complete_course wait up to this long for the change to be visible",
    )

    def __attrs_post_init__(self) -> None:
        if self.base_url is None and self.region not in REGIONS:
            raise ValueError(
                f"region must be one of {', '.join(REGIONS)} (or give base_url), got {self.region!r}"
            )
        if self.reads_per_second < 1 or self.writes_per_second < 1:
            raise ValueError("reads_per_second and writes_per_second must be at least 1")
        if self.poll_interval_s <= 0:
            raise ValueError("poll_interval_s must be positive")


@attrs.frozen(kw_only=True)
class _Pending:
    """What to look for to tell that an accepted item has been applied."""

    kind: Literal["upsert", "enroll", "complete"]
    operation_id: str
    user_id: str = ""
    course_id: str = ""
    attempt_id: str = ""
    known_attempts: frozenset[str] = frozenset()
    existed: bool = False


def _iso(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _failed(key: str, code: str, message: str, **kwargs: Any) -> ItemResult:
    return ItemResult(
        key=key, status=ItemStatus.FAILED, error=ItemError(code=code, message=message), **kwargs
    )


def _action_failed(action: Literal["enroll_user", "complete_course"], item: ItemResult) -> ActionFailed:
    """A single-item action that did not happen: raised, with its result and the item's code."""
    assert item.error is not None
    return ActionFailed(
        f"{action} did not happen: {item.error.message}",
        result=ActionResult(action=action, items=(item,)),
        code=item.error.code,
        connector=SLUG,
    )


def _vendor_error(response: Response) -> tuple[str, str]:
    """(code, message) from any of 360Learning's three error shapes."""
    try:
        body = response.json()
    except InvalidRemoteResponse:
        return f"HTTP {response.status}", response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):
        return error, str(body.get("error_description") or "")
    if isinstance(error, dict):
        return str(error.get("code") or f"HTTP {response.status}"), str(error.get("message") or "")
    return f"HTTP {response.status}", response.text[:200]


class Learning360Connector(Connector[Learning360Config]):
    """360Learning through its API v2.

    >>> async with lmsconnect.connect("360learning", client_id=..., client_secret=..., region="eu",
    ...                               integration_id=...) as lms:
    ...     async for progression in lms.list(lmsconnect.CourseProgression):
    ...         ...
    ...     result = await lms.complete_course(course_progression_id=progression.id, score=90)
    ...     result = await lms.wait_until_visible(result, timeout_s=60)
    """

    spec = ConnectorSpec(
        slug=SLUG,
        name="360Learning",
        config=Learning360Config,
        api_versions=(API_VERSION,),
        simulator="lmsconnect_360learning.testing:Learning360Simulator",
        docs_url="https://360learning.readme.io/docs",
    )
    capabilities = CAPABILITIES
    # Longer upsert durations are InvalidInput before any call (the core checks it).
    max_duration_minutes = MAX_DURATION_MINUTES

    def __init__(self, config: Learning360Config, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._tokens: TokenCache | None = None
        self._pending: dict[ItemResult, _Pending] = {}
        self._integration_names: dict[str, str] = {}
        self._reference_ids: dict[tuple[str, str], str] = {}
        self._converter = make_wire_converter()

    # -- transport ----------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return (self.config.base_url or REGIONS[self.config.region]).rstrip("/")

    @property
    def tokens(self) -> TokenCache:
        if self._tokens is None:
            raise ConfigurationError("the 360Learning connector is not open", connector=SLUG)
        return self._tokens

    def create_http(self) -> HttpClient:
        tokens = TokenCache(self._fetch_token)
        self._tokens = tokens

        async def auth(headers: dict[str, str]) -> None:
            headers["Authorization"] = f"Bearer {await tokens.get()}"

        # The limits are per company and counted by the vendor on arrival; a small margin absorbs the
        # jitter between our send times and its count.
        return HttpClient(
            slug=SLUG,
            base_url=self.api_url,
            read_budget=RateBudget(
                RateWindow(
                    self.config.reads_per_second,
                    1.0,
                    margin=0.05,
                    name=f"{self.config.reads_per_second} GET/s",
                )
            ),
            write_budget=RateBudget(
                RateWindow(
                    self.config.writes_per_second,
                    1.0,
                    margin=0.05,
                    name=f"{self.config.writes_per_second} writes/s",
                )
            ),
            auth=auth,
            error_mapper=self._map_error,
            secrets=[self.config.client_secret.reveal()],
            options=self.http_options,
            headers={VERSION_HEADER: API_VERSION, "Accept": "application/json"},
            routes=ROUTES,
        )

    async def _fetch_token(self) -> tuple[str, float]:
        response = await self.http.request(
            "POST",
            TOKEN_PATH,
            json_body={
                "grant_type": "client_credentials",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret.reveal(),
            },
            authenticate=False,
            # Asking for a token twice is harmless, so failures are retried like a read.
            idempotent=True,
            write=True,
            raise_for_status=False,
        )
        if response.status in (400, 401):
            code, _ = _vendor_error(response)
            raise self.http.raise_mapped(
                AuthenticationError(
                    f"360Learning refused the client credentials ({code}) at {TOKEN_PATH}",
                    status=response.status,
                    vendor_message=code,
                )
            )
        if response.status >= 400:
            raise self.http.raise_mapped(default_error(response, slug=SLUG))
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("access_token"), str):
            # Scrubbed from every message before anything can quote it, even an answer that does not fit.
            self.http.add_secret(body["access_token"])
        answer = self._wire(body, AccessTokenDTO, f"POST {TOKEN_PATH}")
        return answer.access_token, answer.expires_in

    def _wire(self, raw: Any, cls: type[_T], where: str) -> _T:
        """`raw` as the wire record `cls`, or InvalidRemoteResponse naming `where` and the field."""
        return structure_wire(self._converter, raw, cls, where=where, connector=SLUG, scrub=self.http.scrub)

    def _map_error(self, response: Response) -> LMSConnectError | None:
        code, message = _vendor_error(response)
        vendor = f"{code}: {message}" if message and message != code else code
        where = f"{response.method} {urlsplit(response.url).path}"
        status = response.status
        if status == 401:
            return AuthenticationError(
                f"360Learning rejected the access token for {where}", status=status, vendor_message=vendor
            )
        if status == 403:
            scope = scope_for(response.method, response.url)
            return PermissionDenied(
                f"{where} needs the 360Learning scope {scope or '(unknown)'}, "
                "which these API credentials lack",
                permission=scope or code,
                status=status,
                vendor_message=vendor,
            )
        if status == 503 and code == "bulkAPIDisabled":
            return PermissionDenied(
                f"{where}: the Bulk API is disabled for this platform; ask 360Learning to enable it",
                permission="Bulk API (bulkAPIDisabled)",
                status=status,
                vendor_message=vendor,
            )
        if status == 404:
            return NotFound(f"{where}: {code}", status=status, vendor_message=vendor)
        if status == 429:
            return RateLimited(f"{where} was refused: {code}", status=status, vendor_message=vendor)
        if status in (400, 409, 422):
            return InvalidInput(f"360Learning refused {where}: {code}", status=status, vendor_message=vendor)
        return None

    async def _request(
        self, method: str, path: str, *, raise_for_status: bool = True, **kwargs: Any
    ) -> Response:
        """One API call: budgets, retries and error mapping from the core; one token renewal after a 401.

        A 401 means the call was not applied, so it is sent again (once) whatever its method. With
        ``raise_for_status=False`` (passthrough) an error response is returned instead of raised.
        """
        method = method.upper()
        kwargs.setdefault("write", method != "GET")
        for attempt in (1, 2):
            response = await self.http.request(method, path, raise_for_status=False, **kwargs)
            if response.status == 401 and attempt == 1:
                self.tokens.invalidate(self.tokens.last_sent())
                continue
            if response.status >= 400 and raise_for_status:
                mapped = self._map_error(response) or default_error(response, slug=SLUG)
                raise self.http.raise_mapped(mapped)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get(self, path: str, **params: str) -> Any:
        return (await self._request("GET", path, params=params or None)).json()

    async def _pages(self, path: str, params: Mapping[str, str] | None = None) -> AsyncIterator[list[Any]]:
        """Each page of a list endpoint, following ``Link: <...>; rel="next"`` until there is none.

        The cursor makes pages strictly sequential, so the next page is requested as soon as its link is
        known, while the caller works through the current one (two pages in memory at most).
        """
        pending: asyncio.Future[Response] | None = asyncio.ensure_future(
            self._request("GET", path, params=params)
        )
        guard = PageGuard(f"GET {path}", connector=SLUG)
        try:
            while pending is not None:
                response = await pending
                pending = None
                # The same page again under a new cursor would never end either.
                guard.page(response.body)
                link = next_link(response.headers)
                if link is not None:
                    target = self._next_page(response, link, guard)
                    pending = asyncio.ensure_future(self._request("GET", target))
                    # Let the request go out now: a consumer that never awaits would otherwise hold it
                    # back until the whole page has been processed.
                    await asyncio.sleep(0)
                body = response.json()
                if not isinstance(body, list):
                    raise InvalidRemoteResponse(
                        f"GET {path} returned {type(body).__name__}, not a list", connector=SLUG
                    )
                yield body
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    def _next_page(self, response: Response, link: str, guard: PageGuard) -> str:
        """The URL of the next page from a ``Link`` target, unless it leads back to a page already read.

        The target may be relative; it already carries the filters, in its cursor. A target on another
        origin is refused by the core before anything is sent (`HttpClient.request`): the request would
        carry the Bearer token.
        """
        try:
            target = urljoin(self.http.url(response.url), link)
        except ValueError:
            raise InvalidRemoteResponse(
                f"{guard.where} answered a Link header whose next URL cannot be read", connector=SLUG
            ) from None
        guard.cursor(target)
        return target

    async def _records(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        async for page in self._pages(path, params):
            for index, raw in enumerate(page):
                if not isinstance(raw, dict):
                    raise InvalidRemoteResponse(f"GET {path} listed a {type(raw).__name__}", connector=SLUG)
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    # A consumer that never awaits would hold the event loop for a whole page (500
                    # records); handing it back now and then keeps the host service (and the prefetched
                    # next page) moving.
                    await asyncio.sleep(0)
                yield raw

    async def handle_passthrough(self, method: str, path: str, **kwargs: Any) -> Response:
        return await self._request(method, path, **kwargs)

    # -- reads ----------------------------------------------------------------------------------------

    def _reference(self, model: Literal["users", "course_revisions"], remote_id: str) -> str:
        """`make_id` for ids that recur across records (each user and course appears in many attempts).

        Deriving an id is most of the cost of a progression; the cache is bounded and simply starts over
        when full, so memory stays flat on any platform.
        """
        key = (model, remote_id)
        found = self._reference_ids.get(key)
        if found is None:
            if len(self._reference_ids) >= REFERENCE_CACHE_SIZE:
                self._reference_ids.clear()
            found = self._reference_ids[key] = self.make_id(model, remote_id)
        return found

    async def read_users(self) -> AsyncIterator[User]:
        async for raw in self._records(USERS):
            user = self._wire(raw, UserDTO, f"GET {USERS}")
            yield User(
                id=self.make_id("users", user.id),
                remote_id=user.id,
                first_name=user.first_name or None,
                last_name=user.last_name or None,
                work_email=user.mail or None,
                status=UserStatus.ACTIVE if user.status == "active" else UserStatus.INACTIVE,
                remote_deleted_at=user.deleted_at[-1]
                if user.status == "deleted" and user.deleted_at
                else None,
                remote_data={USERS: raw},
            )

    async def _integrations(self) -> AsyncIterator[tuple[IntegrationDTO, dict[str, Any]]]:
        async for raw in self._records(INTEGRATIONS):
            integration = self._wire(raw, IntegrationDTO, f"GET {INTEGRATIONS}")
            self._integration_names[integration.id] = integration.external_platform
            yield integration, raw

    def _provider_id(self, platform: str, integrations: Mapping[str, str]) -> str:
        remote = integrations.get(platform) or f"externalPlatform:{platform}"
        return self.make_id("course_providers", remote)

    async def read_course_providers(self) -> AsyncIterator[CourseProvider]:
        seen: set[str] = set()
        async for integration, raw in self._integrations():
            seen.add(integration.external_platform)
            yield CourseProvider(
                id=self.make_id("course_providers", integration.id),
                remote_id=integration.id,
                name=integration.external_platform,
                remote_data={INTEGRATIONS: raw},
            )
        # Built-in content platforms are not integrations; they exist only as a name on courses.
        async for raw in self._records(COURSES, {"type[eq]": "external"}):
            platform = self._wire(raw, CourseDTO, f"GET {COURSES}").external_platform
            if platform and platform not in seen:
                seen.add(platform)
                remote = f"externalPlatform:{platform}"
                yield CourseProvider(
                    id=self.make_id("course_providers", remote),
                    remote_id=remote,
                    name=platform,
                    remote_data={COURSES: {"externalPlatform": platform}},
                )

    async def read_courses(self) -> AsyncIterator[Course]:
        integrations: dict[str, str] = {i.external_platform: i.id async for i, _ in self._integrations()}
        async for raw in self._records(COURSES):
            course = self._wire(raw, CourseDTO, f"GET {COURSES}")
            yield Course(
                id=self.make_id("courses", course.id),
                remote_id=course.id,
                provider_id=self._provider_id(course.external_platform, integrations)
                if course.type == "external" and course.external_platform
                else None,
                remote_created_at=course.created_at,
                remote_data={COURSES: raw},
            )

    def _revision(self, course: CourseDTO, raw: dict[str, Any]) -> CourseRevision:
        web = (self.config.web_url or self.api_url).rstrip("/")
        return CourseRevision(
            id=self.make_id("course_revisions", course.id),
            remote_id=course.id,
            course_id=self.make_id("courses", course.id),
            title=course.name,
            description=course.description or None,
            remote_url=f"{web}/course/play/{course.id}",
            status=RevisionStatus.ACTIVE if course.status == "published" else RevisionStatus.INACTIVE,
            remote_created_at=course.created_at,
            remote_data={COURSES: raw},
        )

    async def read_course_revisions(self) -> AsyncIterator[CourseRevision]:
        async for raw in self._records(COURSES):
            yield self._revision(self._wire(raw, CourseDTO, f"GET {COURSES}"), raw)

    def _progression(self, stat: CourseStatDTO, raw: dict[str, Any]) -> CourseProgression:
        if stat.completed_at is not None:
            status = ProgressionStatus.COMPLETED
        elif stat.progress > 0:
            status = ProgressionStatus.IN_PROGRESS
        else:
            status = ProgressionStatus.ENROLLED
        remote = f"{stat.course_id}:{stat.user_id}:{stat.id}"
        return CourseProgression(
            id=self.make_id("course_progressions", remote),
            remote_id=remote,
            user_id=self._reference("users", stat.user_id),
            course_revision_id=self._reference("course_revisions", stat.course_id),
            status=status,
            enrolled_at=stat.first_activity_at,
            completed_at=stat.completed_at,
            remote_data={STATS: raw},
        )

    async def read_course_progressions(self) -> AsyncIterator[CourseProgression]:
        async for raw in self._records(STATS):
            yield self._progression(self._wire(raw, CourseStatDTO, f"GET {STATS}"), raw)

    async def _attempts(self, user_id: str, course_id: str) -> list[CourseStatDTO]:
        return [
            self._wire(raw, CourseStatDTO, f"GET {STATS}")
            async for raw in self._records(STATS, {"userId[eq]": user_id, "courseId[eq]": course_id})
        ]

    # -- bulk operations ------------------------------------------------------------------------------

    def _integration(self) -> str:
        if not self.config.integration_id:
            raise ConfigurationError(
                "this action writes through a 360Learning integration: connect with integration_id=... "
                "(GET /api/v2/integrations lists them; docs/360learning-setup.md says how to create one)",
                connector=SLUG,
            )
        return self.config.integration_id

    async def _integration_name(self, integration_id: str) -> str:
        name = self._integration_names.get(integration_id)
        if name is None:
            raw = await self._get(f"{INTEGRATIONS}/{quote(integration_id, safe='')}")
            name = self._wire(raw, IntegrationDTO, f"GET {INTEGRATIONS}/{{id}}").external_platform
            self._integration_names[integration_id] = name
        return name

    async def _submit(self, method: str, path: str, items: Sequence[Mapping[str, Any]]) -> str:
        """Send a bulk request; the id of the operation 360Learning queued (202 + Location)."""
        delay = 1.0
        for attempt in range(1, BULK_SUBMIT_ATTEMPTS + 1):
            try:
                response = await self._request(method, path, json_body={"input": list(items)})
                break
            except RateLimited:
                if attempt == BULK_SUBMIT_ATTEMPTS:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        location = response.headers.get("Location", "")
        try:
            operation_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        except ValueError:
            operation_id = ""
        # Only the id is taken: the operation is polled on the configured API, wherever Location points.
        if response.status != 202 or not is_remote_id(operation_id):
            raise InvalidRemoteResponse(
                f"{method} {path} answered {response.status} without a bulk operation Location",
                connector=SLUG,
            )
        return operation_id

    async def _operation(self, operation_id: str) -> BulkOperationDTO:
        path = f"{OPERATIONS}/{quote(operation_id, safe='')}"
        return self._wire(await self._get(path), BulkOperationDTO, f"GET {OPERATIONS}/{{id}}")

    async def _wait_operation(self, operation_id: str, deadline: float) -> tuple[BulkOperationDTO, bool]:
        """Poll until the operation ends or the loop time passes `deadline`; (last state, ended?)."""
        loop = asyncio.get_running_loop()
        interval = self.config.poll_interval_s
        while True:
            operation = await self._operation(operation_id)
            if operation.status in ("completed", "error"):
                return operation, True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return operation, False
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_POLL_INTERVAL_S)

    async def _results(self, operation_id: str) -> list[BulkResultDTO]:
        where = f"GET {OPERATIONS}/{{id}}/results"
        body = await self._get(f"{OPERATIONS}/{quote(operation_id, safe='')}/results")
        if not isinstance(body, list):
            raise InvalidRemoteResponse(f"{where} returned {type(body).__name__}, not a list", connector=SLUG)
        return [self._wire(entry, BulkResultDTO, f"{where} [{index}]") for index, entry in enumerate(body)]

    # -- upsert_courses -------------------------------------------------------------------------------

    def _external_course(self, item: UpsertCourseItem) -> dict[str, Any]:
        course = item.course
        languages = list(dict.fromkeys(course.languages or ())) or [self.config.default_language]
        payload: dict[str, Any] = {
            "externalId": item.origin_id,
            "name": course.title,
            "launchUrl": course.course_url,
            "defaultLang": languages[0],
            "sources": [],
            "subjects": [],
            "contentType": "course",
        }
        if course.description is not None:
            payload["description"] = course.description
        if course.thumbnail_url is not None:
            payload["imageUrl"] = course.thumbnail_url
        if course.duration:
            payload["duration"] = course.duration
        if languages[1:]:
            fields: dict[str, Any] = {"name": course.title}
            if course.description is not None:
                fields["description"] = course.description
            payload["translations"] = [
                {"lang": lang, "translatedFields": dict(fields)} for lang in languages[1:]
            ]
        return payload

    async def _find_external(
        self, integration: str, external_id: str
    ) -> tuple[ExternalCourseDTO, dict[str, Any]] | None:
        path = f"{INTEGRATIONS}/{quote(integration, safe='')}/courses/{quote(external_id, safe='')}"
        try:
            found = await self._get(path)
        except NotFound:
            return None
        where = f"GET {INTEGRATIONS}/{{id}}/courses/{{externalId}}"
        return self._wire(found, ExternalCourseDTO, where), found

    async def handle_upsert_courses(self, action: UpsertCourses) -> ActionResult:
        integration = self._integration()
        outcome: dict[str, ItemResult] = {}
        payloads: dict[str, dict[str, Any]] = {}
        for item in action.items:
            key = item.origin_id
            if not item.course.course_url:
                outcome[key] = _failed(
                    key, "INPUT.INVALID", "course_url is required: it is the course's launchUrl"
                )
            else:
                payloads[key] = self._external_course(item)

        async def lookup(key: str) -> tuple[str, tuple[ExternalCourseDTO, dict[str, Any]] | None]:
            return key, await self._find_external(integration, key)

        existing: dict[str, dict[str, Any]] = {}
        async for key, found in stream_map(list(payloads), lookup, concurrency=8):
            if found is None:
                continue
            course, raw = found
            existing[key] = raw
            if all(raw.get(field) == value for field, value in payloads[key].items()):
                outcome[key] = ItemResult(
                    key=key,
                    status=ItemStatus.UNCHANGED,
                    id=self.make_id("courses", course.course_id) if course.course_id else None,
                    remote_id=course.course_id,
                )
        to_send = [payloads[key] for key in payloads if key not in outcome]
        path = f"/api/v2/bulk/integrations/{quote(integration, safe='')}/courses"
        for start in range(0, len(to_send), MAX_IMPORT_COURSES):
            chunk = to_send[start : start + MAX_IMPORT_COURSES]
            operation_id = await self._submit("PUT", path, chunk)
            deadline = asyncio.get_running_loop().time() + self.config.upsert_timeout_s
            for item_result in await self._settle_upsert(operation_id, chunk, existing, deadline):
                outcome[item_result.key] = item_result
        return ActionResult(
            action="upsert_courses", items=tuple(outcome[item.origin_id] for item in action.items)
        )

    async def _settle_upsert(
        self,
        operation_id: str,
        chunk: Sequence[Mapping[str, Any]],
        existing: Mapping[str, Any],
        deadline: float,
    ) -> list[ItemResult]:
        operation, ended = await self._wait_operation(operation_id, deadline)
        keys = [str(payload["externalId"]) for payload in chunk]
        if not ended:
            out = []
            for key in keys:
                item = ItemResult(
                    key=key,
                    status=ItemStatus.ACCEPTED,
                    detail=f"360Learning has not processed bulk operation {operation_id} yet (status "
                    f"{operation.status}); wait_until_visible() follows it",
                )
                self._remember(
                    item, _Pending(kind="upsert", operation_id=operation_id, existed=key in existing)
                )
                out.append(item)
            return out
        if operation.status == "error":
            message = f"bulk operation {operation_id} failed: {operation.error_message or 'no reason given'}"
            return [_failed(key, BULK_OPERATION_FAILED, message) for key in keys]
        by_key: dict[str, BulkResultDTO] = {}
        for entry in await self._results(operation_id):
            if entry.external_id is not None:
                by_key[entry.external_id] = entry
        return [self._upsert_result(key, by_key.get(key), key in existing, operation_id) for key in keys]

    def _upsert_result(
        self, key: str, entry: BulkResultDTO | None, existed: bool, operation_id: str
    ) -> ItemResult:
        if entry is None:
            return _failed(
                key, BULK_ITEM_FAILED, f"bulk operation {operation_id} reported nothing for this item"
            )
        if entry.status != "success":
            return _failed(key, BULK_ITEM_FAILED, entry.error_message or "360Learning refused the item")
        course_id = entry.resource_id
        return ItemResult(
            key=key,
            status=ItemStatus.UPDATED if existed else ItemStatus.CREATED,
            id=self.make_id("courses", course_id) if course_id else None,
            remote_id=course_id,
        )

    # -- deactivate_course ----------------------------------------------------------------------------

    async def _course(self, course_id: str) -> tuple[CourseDTO, dict[str, Any]]:
        raw = await self._get(f"{COURSES}/{quote(course_id, safe='')}")
        return self._wire(raw, CourseDTO, f"GET {COURSES}/{{id}}"), raw

    async def _set_archived(self, course_id: str, archived: bool) -> tuple[CourseDTO, dict[str, Any]]:
        response = await self._request(
            "PUT", f"{COURSES}/{quote(course_id, safe='')}/archive", json_body={"archived": archived}
        )
        raw = response.json()
        return self._wire(raw, CourseDTO, f"PUT {COURSES}/{{id}}/archive"), raw

    async def handle_deactivate_course(self, action: DeactivateCourse) -> ActionResult:
        course_id = self.remote_id("courses", action.course_id, field="course_id")
        course, _ = await self._course(course_id)
        if course.status == "archived":
            status, detail = ItemStatus.UNCHANGED, "already archived"
        else:
            await self._set_archived(course_id, True)
            status, detail = ItemStatus.UPDATED, "archived; lms.restore_course(course_id) restores it"
        return ActionResult.one(
            "deactivate_course",
            key=action.course_id,
            status=status,
            id=self.make_id("courses", course_id),
            remote_id=course_id,
            detail=detail,
        )

    async def restore_course(self, course_id: str) -> CourseRevision:
        """Undo `deactivate_course`: un-archive the course; returns its (now ACTIVE) revision.

        >>> revision = await lms.restore_course(course.id)
        """
        remote = self.remote_id("courses", course_id, field="course_id")
        course, raw = await self._set_archived(remote, False)
        return self._revision(course, raw)

    # -- enroll_user and complete_course --------------------------------------------------------------

    async def _course_of_integration(self, key: str, course_id: str) -> ItemResult | None:
        """None if the course belongs to the configured integration, else the failed item saying why."""
        integration = self._integration()
        try:
            course, _ = await self._course(course_id)
        except NotFound:
            return _failed(key, "REMOTE.NOT_FOUND", f"360Learning has no course {course_id}")
        name = await self._integration_name(integration)
        if course.type != "external" or course.external_platform != name:
            kind = course.type or "unknown"
            origin = f" of {course.external_platform}" if course.external_platform else ""
            return _failed(
                key,
                COURSE_NOT_IN_INTEGRATION,
                f"course {course_id} is a {kind} course{origin}, not a course of the integration {name!r}; "
                "360Learning's API v2 records enrollments and completions only through an integration, "
                "for its own courses",
            )
        return None

    async def _submit_stat(self, stat: Mapping[str, Any]) -> str:
        path = f"/api/v2/bulk/integrations/{quote(self._integration(), safe='')}/stats"
        return await self._submit("POST", path, [stat])

    async def handle_enroll_user(self, action: EnrollUser) -> ActionResult:
        user_id = self.remote_id("users", action.user_id, field="user_id")
        course_id = self.remote_id("course_revisions", action.course_revision_id, field="course_revision_id")
        key = f"{action.user_id}:{action.course_revision_id}"
        refused = await self._course_of_integration(key, course_id)
        if refused is not None:
            raise _action_failed("enroll_user", refused)
        attempts = await self._attempts(user_id, course_id)
        open_attempts = [a for a in attempts if a.completed_at is None]
        if open_attempts:
            remote = f"{course_id}:{user_id}:{open_attempts[-1].id}"
            return ActionResult.one(
                "enroll_user",
                key=key,
                status=ItemStatus.UNCHANGED,
                id=self.make_id("course_progressions", remote),
                remote_id=remote,
                detail="already enrolled: the user has an open attempt",
            )
        now = _iso(_now())
        # A 0 % import opens a new attempt: the user has none open, and this one starts after all others.
        operation_id = await self._submit_stat(
            {
                "courseIdentifier": {"type": "internalId", "value": course_id},
                "userIdentifier": {"type": "internalId", "value": user_id},
                "progress": 0,
                "timeSpent": 1,
                "firstActivityAt": now,
                "lastActivityAt": now,
            }
        )
        item = ItemResult(
            key=key,
            status=ItemStatus.ACCEPTED,
            detail=f"{ENROLLMENT_NOTE} (bulk operation {operation_id}, importExternalStatistics)",
        )
        self._remember(
            item,
            _Pending(
                kind="enroll",
                operation_id=operation_id,
                user_id=user_id,
                course_id=course_id,
                known_attempts=frozenset(a.id for a in attempts),
            ),
        )
        return await self._maybe_wait(ActionResult(action="enroll_user", items=(item,)))

    async def handle_complete_course(self, action: CompleteCourse) -> ActionResult:
        remote = self.remote_id(
            "course_progressions", action.course_progression_id, field="course_progression_id"
        )
        parts = remote.split(":")
        if len(parts) != 3 or not all(parts):
            raise InvalidInput(
                f"course_progression_id: {remote!r} is not a 360Learning progression "
                "(<courseId>:<userId>:<attemptId>)",
                field="course_progression_id",
            )
        course_id, user_id, attempt_id = parts
        key = action.course_progression_id
        refused = await self._course_of_integration(key, course_id)
        if refused is not None:
            raise _action_failed("complete_course", refused)
        attempt = next((a for a in await self._attempts(user_id, course_id) if a.id == attempt_id), None)
        progression_id = self.make_id("course_progressions", remote)
        if attempt is None:
            failed = _failed(
                key,
                "REMOTE.NOT_FOUND",
                f"360Learning lists no attempt {attempt_id} of user {user_id} at course {course_id} "
                "(an enrollment that is still being processed is not listed yet)",
                id=progression_id,
                remote_id=remote,
            )
            raise _action_failed("complete_course", failed)
        if attempt.completed_at is not None:
            return ActionResult.one(
                "complete_course",
                key=key,
                status=ItemStatus.UNCHANGED,
                detail=f"already completed at {_iso(attempt.completed_at)}; 360Learning does not modify "
                "a completed attempt",
                id=progression_id,
                remote_id=remote,
            )
        completed_at = action.completed_at or _now()
        started = attempt.first_activity_at or completed_at
        if completed_at < started:
            failed = _failed(
                key,
                "INPUT.INVALID",
                f"completed_at {_iso(completed_at)} is before the attempt started ({_iso(started)})",
                id=progression_id,
                remote_id=remote,
            )
            raise _action_failed("complete_course", failed)
        stat: dict[str, Any] = {
            "courseIdentifier": {"type": "internalId", "value": course_id},
            "userIdentifier": {"type": "internalId", "value": user_id},
            "progress": 100,
            "result": "success",
            "timeSpent": max(attempt.time_spent, 1),
            # firstActivityAt inside the open attempt's window makes 360Learning update that attempt
            # instead of opening a new one; a 100 % import's lastActivityAt is its completion date.
            "firstActivityAt": _iso(started),
            "lastActivityAt": _iso(completed_at),
        }
        if action.score is not None:
            stat["score"] = action.score
        operation_id = await self._submit_stat(stat)
        item = ItemResult(
            key=key,
            status=ItemStatus.ACCEPTED,
            detail=f"{COMPLETION_NOTE} (bulk operation {operation_id}, importExternalStatistics)",
            id=progression_id,
            remote_id=remote,
        )
        self._remember(
            item,
            _Pending(
                kind="complete",
                operation_id=operation_id,
                user_id=user_id,
                course_id=course_id,
                attempt_id=attempt_id,
            ),
        )
        return await self._maybe_wait(ActionResult(action="complete_course", items=(item,)))

    def _remember(self, item: ItemResult, pending: _Pending) -> None:
        # Results nobody waits for must not pile up in a long-lived connection: the oldest are forgotten.
        self._pending[item] = pending
        while len(self._pending) > MAX_PENDING:
            del self._pending[next(iter(self._pending))]

    async def _maybe_wait(self, result: ActionResult) -> ActionResult:
        if self.config.wait_for_processing_s > 0:
            return await self.wait_until_visible(result, timeout_s=self.config.wait_for_processing_s)
        return result

    # -- waiting for asynchronous processing ----------------------------------------------------------

    async def wait_until_visible(self, result: ActionResult, *, timeout_s: float = 60.0) -> ActionResult:
        """Wait until the `accepted` items of `result` show in 360Learning's reads, or `timeout_s` passes.

        >>> result = await lms.enroll_user(user_id=user.id, course_revision_id=revision.id)
        >>> result = await lms.wait_until_visible(result, timeout_s=60)
        >>> result.items[0].status   # CREATED once visible; still ACCEPTED, saying so, on timeout

        An item that became visible is `created` (enrollment, course) or `updated` (completion, course)
        with its id; one that failed in 360Learning's processing is `failed` with the vendor's reason; one
        still not visible stays `accepted` and its ``detail`` says that the wait timed out, and on what.
        Other items, and results of another connection, are returned as they were.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        items = []
        for item in result.items:
            pending = self._pending.get(item)
            if item.status is not ItemStatus.ACCEPTED or pending is None:
                items.append(item)
                continue
            settled = await self._settle(item, pending, deadline, timeout_s)
            if settled.status is not ItemStatus.ACCEPTED:
                self._pending.pop(item, None)
            else:
                self._remember(settled, pending)
            items.append(settled)
        return ActionResult(action=result.action, items=tuple(items))

    async def _settle(
        self, item: ItemResult, pending: _Pending, deadline: float, timeout_s: float
    ) -> ItemResult:
        loop = asyncio.get_running_loop()
        began = loop.time()
        operation, ended = await self._wait_operation(pending.operation_id, deadline)
        if not ended:
            return attrs.evolve(
                item,
                detail=f"timed out after {timeout_s:g} s: not visible yet; bulk operation "
                f"{pending.operation_id} is still {operation.status}",
            )
        if pending.kind == "upsert":
            entries = await self._results(pending.operation_id)
            entry = next((e for e in entries if e.external_id == item.key), None)
            if operation.status == "error":
                return _failed(
                    item.key, BULK_OPERATION_FAILED, operation.error_message or "bulk operation failed"
                )
            return self._upsert_result(item.key, entry, pending.existed, pending.operation_id)
        if operation.status == "error":
            reason = operation.error_message or "no reason given"
            message = f"bulk operation {pending.operation_id} failed: {reason}"
            return _failed(item.key, BULK_OPERATION_FAILED, message, id=item.id, remote_id=item.remote_id)
        entries = await self._results(pending.operation_id)
        if entries and entries[0].status != "success":
            reason = entries[0].error_message or "360Learning refused the statistics import"
            return _failed(item.key, BULK_ITEM_FAILED, reason, id=item.id, remote_id=item.remote_id)
        interval = self.config.poll_interval_s
        while True:
            attempts = await self._attempts(pending.user_id, pending.course_id)
            if pending.kind == "enroll":
                new = [a for a in attempts if a.id not in pending.known_attempts]
                if new:
                    remote = f"{pending.course_id}:{pending.user_id}:{new[-1].id}"
                    return ItemResult(
                        key=item.key,
                        status=ItemStatus.CREATED,
                        id=self.make_id("course_progressions", remote),
                        remote_id=remote,
                        detail=f"visible after {loop.time() - began:.1f} s of waiting",
                    )
            else:
                done = next((a for a in attempts if a.id == pending.attempt_id and a.completed_at), None)
                if done is not None:
                    return attrs.evolve(
                        item,
                        status=ItemStatus.UPDATED,
                        detail=f"completed at {_iso(done.completed_at or _now())}; visible after "
                        f"{loop.time() - began:.1f} s of waiting",
                    )
            remaining = deadline - loop.time()
            if remaining <= 0:
                return attrs.evolve(
                    item,
                    detail=f"timed out after {timeout_s:g} s: bulk operation {pending.operation_id} "
                    "completed but the change is not visible in GET /api/v2/courses/stats yet",
                )
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_POLL_INTERVAL_S)

    # -- scope testing --------------------------------------------------------------------------------

    async def check_access(self) -> Sequence[CheckItem]:
        probes = {
            "users:read": USERS,
            "integrations:read": INTEGRATIONS,
            "courses:read": COURSES,
            "courseStats:read": STATS,
            "bulkOperations:read": OPERATIONS,
        }
        missing: set[str] = set()
        # A probe that failed for another reason (an outage, an answer that does not fit) says nothing
        # about the scope: the items that need it report the failure instead of the whole check failing.
        failed: dict[str, str] = {}
        for scope, path in probes.items():
            try:
                await self._request("GET", path)
            except PermissionDenied:
                missing.add(scope)
            except AuthenticationError:
                raise
            except LMSConnectError as exc:
                failed[scope] = f"GET {path} failed: {exc}"
        if len(failed) == len(probes):
            # Nothing answered: the token request itself may be what failed.
            first = next(iter(failed.values()))
            credentials = CheckItem(
                kind="credentials", name="credentials", status=CheckStatus.ERROR, detail=first
            )
        else:
            credentials = CheckItem(
                kind="credentials", name="credentials", status=CheckStatus.OK, detail="token issued"
            )
        items = [credentials]
        model_needs = {
            "users": ("users:read",),
            "course_providers": ("integrations:read", "courses:read"),
            "courses": ("integrations:read", "courses:read"),
            "course_revisions": ("courses:read",),
            "course_progressions": ("courseStats:read",),
        }
        for model, needs in model_needs.items():
            lacking = tuple(s for s in needs if s in missing)
            errors = [failed[s] for s in needs if s in failed]
            if lacking:
                status = CheckStatus.MISSING_PERMISSION
            else:
                status = CheckStatus.ERROR if errors else CheckStatus.OK
            items.append(
                CheckItem(
                    kind="model",
                    name=model,
                    status=status,
                    permissions=lacking,
                    detail="; ".join([f"needs {', '.join(needs)}", *errors]),
                )
            )
        integration_problem = await self._integration_problem()
        action_needs = {
            "upsert_courses": (("integrations:read", "bulkOperations:read"), "integrations:bulk", True),
            "deactivate_course": (("courses:read",), "courses:write", False),
            "enroll_user": (
                ("courses:read", "courseStats:read", "bulkOperations:read"),
                "integrations:bulk",
                True,
            ),
            "complete_course": (
                ("courses:read", "courseStats:read", "bulkOperations:read"),
                "integrations:bulk",
                True,
            ),
        }
        for action, (needs, write_scope, via_integration) in action_needs.items():
            lacking = tuple(s for s in needs if s in missing)
            untested = f"{write_scope} cannot be tested without writing"
            errors = [failed[s] for s in needs if s in failed]
            if lacking:
                status, detail = CheckStatus.MISSING_PERMISSION, untested
            elif errors:
                status, detail = CheckStatus.ERROR, "; ".join(errors)
            elif via_integration and integration_problem:
                status, detail = CheckStatus.ERROR, integration_problem
            else:
                status, detail = CheckStatus.OK, f"read scopes granted; {untested}"
            items.append(
                CheckItem(kind="action", name=action, status=status, permissions=lacking, detail=detail)
            )
        return items

    async def _integration_problem(self) -> str:
        if not self.config.integration_id:
            return "integration_id is not configured"
        try:
            await self._integration_name(self.config.integration_id)
        except NotFound:
            return f"integration {self.config.integration_id} does not exist on this platform"
        except PermissionDenied:
            return ""  # reported as the missing integrations:read scope
        except AuthenticationError:
            raise
        except LMSConnectError as exc:
            return f"integration {self.config.integration_id} could not be read: {exc}"
        return ""
