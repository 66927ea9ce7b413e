"""The plugin-author "hello world": a connector for Toy LMS, a tiny REST LMS.

Toy LMS speaks JSON over HTTP with a bearer token:

- ``GET /api/users?page=N`` and ``GET /api/courses?page=N``: ``{"data": [...], "page": N, "pages": M}``
- ``GET /api/enrollments?course=ID``: the enrolments of one course
- ``POST /api/courses`` (``{"ref", "title", "description"}``) creates a course; 409 if ``ref`` exists
- ``POST /api/enrollments`` (``{"user", "course"}``) enrols a user
- errors: ``{"error": "message"}`` with 401, 403 (``{"error", "scope"}``), 404, 409, 429, 500

Read this file top to bottom with docs/plugin-guide.md beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

import attrs

from lmsconnect import (
    ActionResult,
    Course,
    CourseProgression,
    CourseRevision,
    EnrollUser,
    ItemError,
    ItemResult,
    ItemStatus,
    PermissionDenied,
    ProgressionStatus,
    RevisionStatus,
    UpsertCourses,
    User,
    UserStatus,
)
from lmsconnect.plugin import (
    Capabilities,
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
    action_support,
    announce_pages,
    config_field,
    make_converter,
    model_support,
    stream_map,
    structure_wire,
)

__all__ = ["ToyConfig", "ToyConnector"]


# 1. Configuration: an attrs class; each field documents itself for the CLI, docs and errors.
@attrs.frozen(kw_only=True)
class ToyConfig:
    base_url: str = config_field(help="Base URL of the Toy LMS", example="http://127.0.0.1:8080")
    token: Secret = config_field(help="API token (Settings > API)", secret=True)
    calls_per_second: int = config_field(default=20, help="The tenant's rate limit")


# 2. The capability table: the single source of what this connector does.
CAPABILITIES = Capabilities.build(
    slug="toylms",
    name="Toy LMS",
    models={
        "users": model_support("first_name", "last_name", "work_email", "status"),
        "courses": model_support("origin_id", "remote_created_at"),
        "course_revisions": model_support("course_id", "title", "description", "status"),
        "course_progressions": model_support(
            "user_id", "course_revision_id", "status", "completed_at",
            note="One call per course (the enrolments endpoint is per course).",
        ),
    },
    actions={
        "upsert_courses": action_support(
            "items.origin_id", "items.course.type", "items.course.title", "items.course.description",
            note="Creates only: Toy LMS cannot edit a course, so a changed existing course fails with "
            "LMS.COURSE_UPDATE_NOT_SUPPORTED.",
        ),
        "enroll_user": action_support("user_id", "course_revision_id"),
    },
    features={"passthrough": "", "scope_testing": "", "per_model_tests": ""},
    unsupported_notes={"complete_course": "Toy LMS has no completion API."},
)


# 3. Wire records: what Toy LMS sends, typed. Anything a server sends is untrusted: `structure_wire` turns
# each answer into these records or raises InvalidRemoteResponse naming the endpoint and the field, so a
# broken answer fails the read instead of raising a KeyError or storing a made-up record.
T = TypeVar("T")
_ID = [attrs.validators.ge(1), attrs.validators.lt(2**53)]  # ids are positive JSON-safe integers
_EPOCH = [attrs.validators.ge(0), attrs.validators.lt(4_102_444_800)]  # 0 (none) or 1970..2099


@attrs.frozen
class UserWire:
    id: int = attrs.field(validator=_ID)
    first: str = ""
    last: str = ""
    email: str = ""
    active: bool = False


@attrs.frozen
class CourseWire:
    id: int = attrs.field(validator=_ID)
    title: str
    ref: str = ""
    description: str = ""
    published: bool = False
    created: int = attrs.field(default=0, validator=_EPOCH)


@attrs.frozen
class EnrollmentWire:
    course: int = attrs.field(validator=_ID)
    user: int = attrs.field(validator=_ID)
    done: int = attrs.field(default=0, validator=_EPOCH)  # completion time, 0 while not completed


@attrs.frozen
class Page(Generic[T]):
    data: list[T]
    page: int = 1
    pages: int = 1


@attrs.frozen
class Me:
    scopes: list[str]


@attrs.frozen
class ErrorBody:
    error: str = "forbidden"
    scope: str | None = None


_CONVERTER = make_converter(forbid_extra_keys=False)  # vendors add fields: ignore what we do not read


def _ts(value: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value else None


class ToyConnector(Connector[ToyConfig]):
    spec = ConnectorSpec(
        slug="toylms",
        name="Toy LMS",
        config=ToyConfig,
        api_versions=("1",),
        simulator="lmsconnect_toylms.testing:ToySimulator",
    )
    capabilities = CAPABILITIES

    # 4. Transport: base URL, budgets, auth, error mapping, secrets to scrub.
    def create_http(self) -> HttpClient:
        token = self.config.token.reveal()

        async def auth(headers: dict[str, str]) -> None:
            headers["Authorization"] = f"Bearer {token}"

        return HttpClient(
            slug=self.slug,
            base_url=self.config.base_url,
            read_budget=RateBudget(RateWindow(self.config.calls_per_second, 1.0)),
            auth=auth,
            error_mapper=self._error,
            secrets=[token],
            options=self.http_options,
        )

    def _error(self, response: Response) -> PermissionDenied | None:
        # Toy LMS names the missing scope; surface it so check() can report it by name.
        if response.status == 403:
            body = self._wire(response.json(), ErrorBody, "a 403 answer")
            return PermissionDenied(body.error, permission=body.scope, status=403)
        return None  # the default mapping handles 401/404/429/5xx

    def _wire(self, raw: Any, cls: type[T], where: str) -> T:
        return structure_wire(_CONVERTER, raw, cls, where=where, connector=self.slug, scrub=self.http.scrub)

    # 5. Reads: async generators, streaming page by page.
    async def _pages(
        self, path: str, cls: type[Page[T]], model: str | None = None
    ) -> AsyncIterator[tuple[T, Any]]:
        # Toy LMS pages are numbered from 1 and the body says how many there are. PageGuard stops a
        # server that keeps answering the same page (a huge "pages" would otherwise loop forever).
        # Each item comes as its checked wire record and its raw payload (kept whole as remote_data).
        guard = PageGuard(f"GET {path}", connector=self.slug)
        page, pages = 1, 1
        while page <= pages:
            raw = await self.http.get_json(path, params={"page": page})
            body = self._wire(raw, cls, f"GET {path}")
            guard.page(body.data)
            pages = body.pages
            if model is not None and pages > 0:
                # The page count is the vendor's own: the sync shows "page 2 of 3" and an ETA from it.
                announce_pages(model, page, pages)
            for item in zip(body.data, raw["data"], strict=True):
                yield item
            page += 1

    async def read_users(self) -> AsyncIterator[User]:
        async for wire, raw in self._pages("/api/users", Page[UserWire], "users"):
            yield User(
                id=self.make_id("users", wire.id),
                remote_id=str(wire.id),
                first_name=wire.first or None,
                last_name=wire.last or None,
                work_email=wire.email or None,
                status=UserStatus.ACTIVE if wire.active else UserStatus.INACTIVE,
                remote_data={"/api/users": raw},
            )

    async def read_courses(self) -> AsyncIterator[Course]:
        async for wire, raw in self._pages("/api/courses", Page[CourseWire], "courses"):
            yield self._course(wire, raw)

    def _course(self, wire: CourseWire, raw: Any) -> Course:
        return Course(
            id=self.make_id("courses", wire.id),
            remote_id=str(wire.id),
            origin_id=wire.ref or None,
            remote_created_at=_ts(wire.created),
            remote_data={"/api/courses": raw},
        )

    async def read_course_revisions(self) -> AsyncIterator[CourseRevision]:
        # Toy LMS has no versions: one revision per course, sharing its remote id.
        async for wire, raw in self._pages("/api/courses", Page[CourseWire], "course_revisions"):
            yield CourseRevision(
                id=self.make_id("course_revisions", wire.id),
                remote_id=str(wire.id),
                course_id=self.make_id("courses", wire.id),
                title=wire.title,
                description=wire.description or None,
                status=RevisionStatus.ACTIVE if wire.published else RevisionStatus.INACTIVE,
                remote_data={"/api/courses": raw},
            )

    async def read_course_progressions(self) -> AsyncIterator[CourseProgression]:
        async def enrollments(course: CourseWire) -> list[tuple[EnrollmentWire, Any]]:
            body = await self.http.get_json("/api/enrollments", params={"course": course.id})
            page = self._wire(body, Page[EnrollmentWire], "GET /api/enrollments")
            return list(zip(page.data, body["data"], strict=True))

        courses = (wire async for wire, _ in self._pages("/api/courses", Page[CourseWire]))
        async for batch in stream_map(courses, enrollments, concurrency=8):
            for wire, raw in batch:
                remote = f"{wire.course}:{wire.user}"
                yield CourseProgression(
                    id=self.make_id("course_progressions", remote),
                    remote_id=remote,
                    user_id=self.make_id("users", wire.user),
                    course_revision_id=self.make_id("course_revisions", wire.course),
                    status=ProgressionStatus.COMPLETED if wire.done else ProgressionStatus.ENROLLED,
                    completed_at=_ts(wire.done),
                    remote_data={"/api/enrollments": raw},
                )

    # 6. Actions: validated input in, per-item results out.
    async def handle_upsert_courses(self, action: UpsertCourses) -> ActionResult:
        existing = {c.ref: c async for c, _ in self._pages("/api/courses", Page[CourseWire]) if c.ref}
        items = []
        for item in action.items:
            wire = existing.get(item.origin_id)
            if wire is not None:
                found = self._course(wire, None)
                same = (wire.title, wire.description or None) == (item.course.title, item.course.description)
                items.append(
                    ItemResult(key=item.origin_id, id=found.id, remote_id=found.remote_id,
                               status=ItemStatus.UNCHANGED)
                    if same
                    else ItemResult(
                        key=item.origin_id, id=found.id, remote_id=found.remote_id,
                        status=ItemStatus.FAILED,
                        error=ItemError(code="LMS.COURSE_UPDATE_NOT_SUPPORTED",
                                        message="Toy LMS cannot edit an existing course"),
                    )
                )
                continue
            response = await self.http.request(
                "POST", "/api/courses",
                json_body={"ref": item.origin_id, "title": item.course.title,
                           "description": item.course.description or ""},
            )
            body = response.json()
            created = self._course(self._wire(body, CourseWire, "POST /api/courses"), body)
            items.append(ItemResult(key=item.origin_id, id=created.id, remote_id=created.remote_id,
                                    status=ItemStatus.CREATED))
        return ActionResult(action="upsert_courses", items=tuple(items))

    async def handle_enroll_user(self, action: EnrollUser) -> ActionResult:
        user = self.remote_id("users", action.user_id, field="user_id")
        course = self.remote_id("course_revisions", action.course_revision_id, field="course_revision_id")
        await self.http.request("POST", "/api/enrollments", json_body={"user": user, "course": course})
        remote = f"{course}:{user}"
        return ActionResult.one("enroll_user", key=action.user_id, status=ItemStatus.CREATED,
                                remote_id=remote, id=self.make_id("course_progressions", remote))

    # 7. Scope testing: what the token may do, by the vendor's own scope names.
    async def check_access(self) -> list[CheckItem]:
        scopes = set(self._wire(await self.http.get_json("/api/me"), Me, "GET /api/me").scopes)
        needs = {"users": "users:read", "courses": "courses:read", "course_revisions": "courses:read",
                 "course_progressions": "enrollments:read"}
        action_needs = {"upsert_courses": "courses:write", "enroll_user": "enrollments:write"}
        items = []
        for kind, table in (("model", needs), ("action", action_needs)):
            for name, scope in table.items():
                ok = scope in scopes
                items.append(CheckItem(
                    kind=kind,  # type: ignore[arg-type]
                    name=name,
                    status=CheckStatus.OK if ok else CheckStatus.MISSING_PERMISSION,
                    permissions=() if ok else (scope,),
                ))
        return items

