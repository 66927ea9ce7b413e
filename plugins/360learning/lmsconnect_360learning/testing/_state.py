"""The simulated 360Learning company: seeded data and the business rules of API v2.

Nothing here knows about HTTP. The server module turns requests into calls on :class:`Company` and
its results into responses, so tests can also drive the state directly (the simulator's own API).
Field names follow 360Learning's OpenAPI files (``UserDTO``, ``CourseDTO``, ``CourseStatDTO``,
``IntegrationDTO``, ``ExternalCourseDTO``, ``ImportExternalStatisticsDTO``); see
``docs/360learning-setup.md`` for the sources.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

UTC = timezone.utc

JSON = dict[str, Any]

# Seeded records are stamped inside 2024; records created at run time get ObjectIds whose time
# prefix starts after that, so every listing (sorted by _id, like MongoDB) shows new records last.
_SEED_EPOCH = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
_RUNTIME_ID_PREFIX = 0x70000000


FIRST_NAMES = (
    "Amira",
    "Bruno",
    "Chloé",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hiroshi",
    "Inès",
    "Jonas",
    "Kemi",
    "Lucas",
    "Maëlle",
    "Nikolai",
    "Olga",
    "Pedro",
    "Quentin",
    "Rosa",
    "Sven",
    "Tamar",
)
LAST_NAMES = (
    "Bernard",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Laurent",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petit",
    "Rossi",
    "Schmidt",
    "Tanaka",
)
COURSE_TOPICS = (
    "Onboarding",
    "Security Awareness",
    "Negotiation",
    "Data Privacy",
    "Leadership",
    "Python",
    "Customer Empathy",
    "Time Management",
    "Public Speaking",
    "Excel",
    "Inclusive Hiring",
    "Feedback Culture",
    "Project Management",
    "Sales Basics",
    "First Aid",
)
LANGS = ("en", "fr", "de", "es", "it")
# Built-in content connectors: their names are reserved and they are not API integrations, so
# they show up only as ``externalPlatform`` on courses, never in ``GET /integrations``.
BUILTIN_PLATFORMS = ("Udemy", "Coursera", "LinkedIn Learning")
INTEGRATION_NAMES = ("Acme Academy", "Skillforge", "Northwind Learning", "Contoso Campus", "Fabrikam Labs")


def iso(moment: datetime) -> str:
    """360Learning's datetime format: ISO 8601, UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 date or datetime; naive values are taken as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ApiError(Exception):
    """A 360Learning error response: ``{"error": {"code", "message"}}`` or ``{"error": "<code>"}``."""

    def __init__(self, status: int, code: str, message: str = "", *, flat: bool = False) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message or code
        self.flat = flat

    def body(self) -> JSON:
        if self.flat:
            return {"error": self.code}
        return {"error": {"code": self.code, "message": self.message}}


@attrs.define
class SimUser:
    id: str
    mail: str
    username: str
    status: str
    lang: str
    first_name: str
    last_name: str
    job: str | None = None
    deleted_at: list[str] = attrs.field(factory=list)
    reactivated_at: list[str] = attrs.field(factory=list)
    last_login: str | None = None

    def to_json(self) -> JSON:
        body: JSON = {
            "_id": self.id,
            "mail": self.mail,
            "username": self.username,
            "status": self.status,
            "lang": self.lang,
            "firstName": self.first_name,
            "lastName": self.last_name,
        }
        if self.job:
            body["job"] = self.job
        if self.deleted_at:
            body["deletedAt"] = list(self.deleted_at)
        if self.reactivated_at:
            body["reactivatedAt"] = list(self.reactivated_at)
        if self.last_login:
            body["lastLoginDate"] = self.last_login
        return body


@attrs.define
class SimGroup:
    id: str
    name: str
    parent_id: str | None
    public: bool = False

    def to_json(self) -> JSON:
        body: JSON = {"_id": self.id, "name": self.name, "public": self.public}
        if self.parent_id:
            body["parentId"] = self.parent_id
        return body


@attrs.define
class SimMembership:
    """One role of one user in one group (``UserRole`` in the OpenAPI files); a user may hold several."""

    user_id: str
    role: str

    @property
    def id(self) -> str:
        # Listed "sorted per user", so the key orders by user first.
        return f"{self.user_id}:{self.role}"

    def to_json(self) -> JSON:
        return {"userId": self.user_id, "role": self.role}


@attrs.define
class SimCustomField:
    """A custom field definition (``CustomFieldDTO``): users' or contents' extra profile fields."""

    id: str
    name: str
    target_type: str  # users | contents
    type: str  # string | date

    def to_json(self) -> JSON:
        return {"_id": self.id, "name": self.name, "targetType": self.target_type, "type": self.type}


@attrs.define
class SimIntegration:
    id: str
    external_platform: str
    author_id: str
    group_id: str
    logo_url: str | None = None
    default_completion: bool = False
    default_progress: int = 0
    active: bool = True

    def to_json(self) -> JSON:
        body: JSON = {
            "_id": self.id,
            "externalPlatform": self.external_platform,
            "authorId": self.author_id,
            "groupId": self.group_id,
            "defaultCompletion": self.default_completion,
            "defaultProgress": self.default_progress,
            "noGroupPropagation": False,
        }
        if self.logo_url:
            body["externalPlatformLogoUrl"] = self.logo_url
        return body


@attrs.define
class SimCourse:
    id: str
    name: str
    description: str | None
    duration: int | None
    default_lang: str
    author_id: str
    group_id: str
    created_at: str
    modified_at: str
    status: str
    type: str
    version: int = 1
    external_platform: str | None = None
    translations: list[str] = attrs.field(factory=list)
    # Translations under way: listed with ``published: false`` (learners cannot take them yet).
    draft_translations: list[str] = attrs.field(factory=list)
    # External courses only: the integration that owns the course and its ExternalCourseDTO.
    integration_id: str | None = None
    external: JSON | None = None

    def to_json(self) -> JSON:
        body: JSON = {
            "_id": self.id,
            "name": self.name,
            "sourceLang": self.default_lang,
            "defaultLang": self.default_lang,
            "authorId": self.author_id,
            "coAuthorIds": [],
            "groupId": self.group_id,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "status": self.status,
            "type": self.type,
            "currentVersionNumber": self.version,
            "collaborativeLearning": False,
            "translations": [
                {
                    "lang": lang,
                    "published": lang not in self.draft_translations,
                    "translatorIds": [self.author_id],
                    "translatedFields": {"name": f"{self.name} ({lang})"},
                }
                for lang in (*self.translations, *self.draft_translations)
            ],
        }
        if self.description is not None:
            body["description"] = self.description
        if self.duration is not None:
            body["duration"] = self.duration
        if self.external_platform is not None:
            body["externalPlatform"] = self.external_platform
        return body

    def external_json(self) -> JSON:
        assert self.external is not None
        return {**self.external, "courseId": self.id, "authorId": self.author_id}


@attrs.define
class SimAttempt:
    id: str
    course_id: str
    user_id: str
    version: int
    lang: str
    first_activity_at: str
    last_activity_at: str
    time_spent: int
    progress: int
    completed_at: str | None = None
    score: int | None = None
    # Set when the course was played inside a path session.
    path_id: str | None = None
    path_session_id: str | None = None

    def to_json(self) -> JSON:
        body: JSON = {
            "_id": self.id,
            "courseId": self.course_id,
            "userId": self.user_id,
            "versionNumber": self.version,
            "lang": self.lang,
            "firstActivityAt": self.first_activity_at,
            "lastActivityAt": self.last_activity_at,
            "timeSpent": self.time_spent,
            "progress": self.progress,
        }
        if self.completed_at is not None:
            body["completedAt"] = self.completed_at
        if self.score is not None:
            body["score"] = self.score
        if self.path_id is not None and self.path_session_id is not None:
            body["pathId"] = self.path_id
            body["pathSessionId"] = self.path_session_id
        return body


@attrs.define
class SimPathStat:
    """One learner's enrollment in one path session (``PathSessionUserStatDTO``)."""

    id: str
    path_id: str
    session_id: str
    user_id: str
    enrolled_at: str
    due_date: str | None = None

    def to_json(self) -> JSON:
        body: JSON = {
            "_id": self.id,
            "pathId": self.path_id,
            "sessionId": self.session_id,
            "userId": self.user_id,
            "progress": 0,
            "status": {"type": "notYetStarted"},
            "timeSpent": 0,
            "enrolledAt": self.enrolled_at,
            "selfEnrolled": False,
        }
        if self.due_date is not None:
            body["dueDate"] = self.due_date
        return body


@attrs.define
class SimBulkOperation:
    id: str
    type: str
    integration_id: str
    items: list[JSON]
    created_at: datetime
    created_mono: float
    delay: float
    status: str = "pending"
    results: list[JSON] | None = None
    ended_at: datetime | None = None
    error_message: str | None = None

    def state_at(self, now: float) -> str:
        if self.results is not None:
            return self.status
        age = now - self.created_mono
        if self.delay <= 0 or age >= self.delay:
            return "running"  # due; Company.advance() finishes it
        if age < 0.1 * self.delay:
            return "pending"
        if age < 0.3 * self.delay:
            return "queued"
        return "running"

    def to_json(self, now: float) -> JSON:
        status = self.state_at(now)
        body: JSON = {"_id": self.id, "type": self.type, "createdAt": iso(self.created_at), "status": status}
        if status != "pending":
            body["queuedAt"] = iso(self.created_at + timedelta(seconds=0.1 * self.delay))
        if status in ("running", "completed", "error"):
            started = self.created_at + timedelta(seconds=0.3 * self.delay)
            body["startedAt"] = iso(started)
            done = len(self.results) if self.results is not None else 0
            body["progress"] = {"index": max(done - 1, 0), "updatedAt": iso(started)}
        if self.ended_at is not None:
            body["endedAt"] = iso(self.ended_at)
        if self.error_message is not None:
            body["errorMessage"] = self.error_message
        return body


def _match_filter(value: Any, op: str, operands: Sequence[str]) -> bool:
    if op == "eq":
        return value is not None and str(value) == operands[0]
    if op == "ne":
        return value is None or str(value) != operands[0]
    if op == "in":
        return value is not None and str(value) in operands
    if op == "nin":
        return value is None or str(value) not in operands
    if op in ("gte", "lt"):
        if value is None:
            return False
        left = parse_iso(str(value)).replace(microsecond=0)
        right = parse_iso(operands[0]).replace(microsecond=0)
        return left >= right if op == "gte" else left < right
    raise ApiError(400, "invalidInput", f"unsupported filter operator {op!r}")


Filter = tuple[str, str, tuple[str, ...]]


@attrs.define
class Company:
    """All of one simulated 360Learning platform (one ``companyId``)."""

    seed: int
    processing_delay: float
    clock: Callable[[], float] = time.monotonic
    company_id: str = ""
    rng: random.Random = attrs.field(init=False)
    id_rng: random.Random = attrs.field(init=False)
    runtime_ids: int = 0
    admin_id: str = ""
    root_group_id: str = ""
    users: dict[str, SimUser] = attrs.field(factory=dict)
    groups: dict[str, SimGroup] = attrs.field(factory=dict)
    custom_fields: dict[str, SimCustomField] = attrs.field(factory=dict)
    path_stats: dict[str, SimPathStat] = attrs.field(factory=dict)
    # user id -> custom field id -> value (GET /api/v2/users/{userId}/custom-fields/values).
    user_custom_values: dict[str, dict[str, str]] = attrs.field(factory=dict)
    # group id -> membership key -> membership (GET /api/v2/groups/{groupId}/roles).
    memberships: dict[str, dict[str, SimMembership]] = attrs.field(factory=dict)
    integrations: dict[str, SimIntegration] = attrs.field(factory=dict)
    courses: dict[str, SimCourse] = attrs.field(factory=dict)
    attempts: dict[str, SimAttempt] = attrs.field(factory=dict)
    operations: dict[str, SimBulkOperation] = attrs.field(factory=dict)
    # Sorted _id lists per collection, for keyset pagination.
    order: dict[str, list[str]] = attrs.field(factory=dict)
    own_integration_id: str = ""

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # Ids made at run time come from their own stream so that they do not depend on how much
        # of the seed stream the data generation consumed.
        self.id_rng = random.Random(f"360learning-runtime-{self.seed}")
        collections = ("users", "groups", "integrations", "courses", "attempts", "operations")
        for name in (*collections, "customFields", "pathStats"):
            self.order[name] = []

    # ids -----------------------------------------------------------------------------------

    def _seed_id(self, moment: datetime) -> str:
        return f"{int(moment.timestamp()):08x}{self.rng.getrandbits(64):016x}"

    def new_id(self) -> str:
        self.runtime_ids += 1
        return f"{_RUNTIME_ID_PREFIX + self.runtime_ids:08x}{self.id_rng.getrandbits(64):016x}"

    def _insert(self, collection: str, record_id: str) -> None:
        bisect.insort(self.order[collection], record_id)

    # seeding -------------------------------------------------------------------------------

    def generate(
        self, *, users: int, courses: int, enrollments: int, providers: int, archived_share: float
    ) -> None:
        rng = self.rng
        self.company_id = self._seed_id(_SEED_EPOCH)
        self.admin_id = self._seed_id(_SEED_EPOCH)
        root = SimGroup(id=self._seed_id(_SEED_EPOCH), name="Simulated Company", parent_id=None, public=True)
        self.root_group_id = root.id
        self._add_group(root)
        for index, name in enumerate(("Sales", "Engineering", "Support")):
            moment = _SEED_EPOCH + timedelta(days=index + 1)
            self._add_group(SimGroup(id=self._seed_id(moment), name=name, parent_id=root.id))
        group_ids = [g for g in self.order["groups"] if g != root.id] or [root.id]

        admin = SimUser(
            id=self.admin_id,
            mail="admin@sim.360learning.test",
            username="admin",
            status="active",
            lang="en",
            first_name="Ada",
            last_name="Admin",
            job="Platform admin",
        )
        self._add_user(admin)
        for index in range(max(users - 1, 0)):
            moment = _SEED_EPOCH + timedelta(minutes=7 * (index + 1))
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            roll = rng.random()
            status = "active" if roll < 0.9 else ("invited" if roll < 0.95 else "deleted")
            user = SimUser(
                id=self._seed_id(moment),
                mail=f"{_ascii(first)}.{_ascii(last)}.{index}@example.com",
                username=f"{_ascii(first)}{index}",
                status=status,
                lang=rng.choice(LANGS),
                first_name=first,
                last_name=last,
                job=rng.choice((None, "Engineer", "Sales rep", "Manager")),
            )
            if status == "deleted":
                user.deleted_at = [iso(moment + timedelta(days=200))]
            elif status == "active":
                user.last_login = iso(moment + timedelta(days=rng.randint(1, 300)))
            self._add_user(user)

        # The first integration is the one the connector writes through (see connect_config).
        names = ("lmsconnect", *INTEGRATION_NAMES)
        for index in range(max(providers, 1)):
            name = names[index] if index < len(names) else f"Provider {index}"
            moment = _SEED_EPOCH + timedelta(hours=index + 1)
            integration = SimIntegration(
                id=self._seed_id(moment),
                external_platform=name,
                author_id=self.admin_id,
                group_id=root.id,
                logo_url=f"https://cdn.example.com/logos/{index}.png",
            )
            self._add_integration(integration)
        self.own_integration_id = self.order["integrations"][0]
        integration_ids = list(self.order["integrations"])

        course_ids: list[str] = []
        for index in range(courses):
            moment = _SEED_EPOCH + timedelta(hours=5 * (index + 1))
            topic = COURSE_TOPICS[index % len(COURSE_TOPICS)]
            lang = rng.choice(LANGS)
            extra = sorted(set(rng.sample(LANGS, rng.randint(0, 2))) - {lang})
            roll = rng.random()
            kind = "native" if roll < 0.4 else ("elearning standard" if roll < 0.5 else "external")
            modified = moment + timedelta(days=rng.randint(0, 400))
            course = SimCourse(
                id=self._seed_id(moment),
                name=f"{topic} {index + 1}",
                description=f"Everything about {topic.lower()}, part {index + 1}.",
                duration=rng.choice((5, 15, 30, 45, 60, 90)),
                default_lang=lang,
                author_id=self.admin_id,
                group_id=rng.choice(group_ids),
                created_at=iso(moment),
                modified_at=iso(modified),
                status="published",
                type=kind,
                version=rng.randint(1, 4),
                translations=extra,
            )
            if rng.random() < archived_share:
                course.status = "archived"
            if kind == "external":
                if rng.random() < 0.25:
                    course.external_platform = rng.choice(BUILTIN_PLATFORMS)
                else:
                    integration = self.integrations[rng.choice(integration_ids)]
                    external_id = f"ext-{index + 1:05d}"
                    course.external_platform = integration.external_platform
                    course.integration_id = integration.id
                    course.external = {
                        "externalId": external_id,
                        "name": course.name,
                        "description": course.description,
                        "launchUrl": f"https://content.example.com/launch/{external_id}",
                        "imageUrl": f"https://content.example.com/img/{external_id}.png",
                        "duration": course.duration,
                        "defaultLang": lang,
                        "sources": [{"name": integration.external_platform}],
                        "subjects": [topic],
                        "contentType": "course",
                        "translations": [
                            {"lang": other, "translatedFields": {"name": f"{course.name} ({other})"}}
                            for other in extra
                        ],
                    }
            self._add_course(course)
            course_ids.append(course.id)

        self._seed_memberships(root.id, group_ids)
        self._seed_custom_fields()
        user_ids = [u for u in self.order["users"] if self.users[u].status != "invited"]
        if not user_ids or not course_ids:
            return
        for _ in range(enrollments):
            user_id = rng.choice(user_ids)
            course = self.courses[rng.choice(course_ids)]
            start = parse_iso(course.created_at) + timedelta(hours=rng.randint(1, 9000))
            roll = rng.random()
            progress = 100 if roll < 0.45 else (0 if roll < 0.6 else rng.randint(1, 99))
            end = start + timedelta(minutes=rng.randint(1, 600))
            attempt = SimAttempt(
                id=self._seed_id(start),
                course_id=course.id,
                user_id=user_id,
                version=rng.randint(1, course.version),
                lang=course.default_lang,
                first_activity_at=iso(start),
                last_activity_at=iso(end),
                time_spent=int((end - start).total_seconds() * 1000) if progress else 1,
                progress=progress,
            )
            if progress == 100:
                attempt.completed_at = iso(end)
                attempt.score = rng.randint(40, 100)
            elif progress and rng.random() < 0.5:
                attempt.score = rng.randint(0, 100)
            self._add_attempt(attempt)
        self._seed_paths()

    def _seed_paths(self) -> None:
        """Three paths of two sessions each; about a third of the attempts were played in one of them,
        whose learners are enrolled in it (most sessions with a due date). A stream of its own, so the rest
        of the data does not depend on it."""
        rng = random.Random(f"360learning-paths-{self.seed}")

        def new_id(moment: datetime) -> str:
            return f"{int(moment.timestamp()):08x}{rng.getrandbits(64):016x}"

        sessions = []
        for index in range(6):
            moment = _SEED_EPOCH + timedelta(days=index)
            sessions.append((new_id(moment - timedelta(hours=1)), new_id(moment), rng.random() < 0.7))
        enrolled_in: set[tuple[str, str]] = set()
        for attempt in list(self.attempts.values()):
            if rng.random() >= 0.35:
                continue
            path_id, session_id, has_due_date = rng.choice(sessions)
            attempt.path_id, attempt.path_session_id = path_id, session_id
            if (session_id, attempt.user_id) in enrolled_in:
                continue
            enrolled_in.add((session_id, attempt.user_id))
            enrolled = parse_iso(attempt.first_activity_at) - timedelta(days=1)
            stat = SimPathStat(
                id=new_id(enrolled),
                path_id=path_id,
                session_id=session_id,
                user_id=attempt.user_id,
                enrolled_at=iso(enrolled),
                due_date=iso(enrolled + timedelta(days=30)) if has_due_date else None,
            )
            self.path_stats[stat.id] = stat
            self._insert("pathStats", stat.id)

    def _seed_memberships(self, root_id: str, group_ids: list[str]) -> None:
        """Every user a learner of one group; a few also coach, edit, administer or analyse it; the
        admin owns the root group. A stream of its own, so the rest of the data does not depend on it."""
        rng = random.Random(f"360learning-roles-{self.seed}")
        self.add_membership(root_id, self.admin_id, "owner")
        for user_id in self.order["users"]:
            if user_id == self.admin_id:
                continue
            group_id = rng.choice(group_ids)
            self.add_membership(group_id, user_id, "learner")
            roll = rng.random()
            extra = "coach" if roll < 0.05 else "editor" if roll < 0.08 else "admin" if roll < 0.1 else (
                "analyst" if roll < 0.12 else None
            )
            if extra is not None:
                self.add_membership(group_id, user_id, extra)

    def _seed_custom_fields(self) -> None:
        """Two user fields (a department, a hire date) filled for most users, and one course field. A
        stream of its own, so the rest of the data does not depend on it."""
        rng = random.Random(f"360learning-custom-fields-{self.seed}")
        made = []
        for index, (name, target, kind) in enumerate(
            (("Department", "users", "string"), ("Hire date", "users", "date"),
             ("Content owner", "contents", "string"))
        ):
            moment = _SEED_EPOCH + timedelta(seconds=index)
            field = SimCustomField(
                id=f"{int(moment.timestamp()):08x}{rng.getrandbits(64):016x}", name=name, target_type=target,
                type=kind,
            )
            self.custom_fields[field.id] = field
            self._insert("customFields", field.id)
            made.append(field)
        department, hired = made[0], made[1]
        for user_id in self.order["users"]:
            values: dict[str, str] = {}
            if rng.random() < 0.7:
                values[department.id] = rng.choice(("Sales", "Engineering", "Support", "Finance"))
            if rng.random() < 0.5:
                day = _SEED_EPOCH.date() - timedelta(days=rng.randint(0, 3000))
                values[hired.id] = day.isoformat()
            if values:
                self.user_custom_values[user_id] = values

    def add_membership(self, group_id: str, user_id: str, role: str) -> SimMembership:
        membership = SimMembership(user_id=user_id, role=role)
        self.memberships.setdefault(group_id, {})[membership.id] = membership
        bisect.insort(self.order.setdefault(f"roles:{group_id}", []), membership.id)
        return membership

    def _add_user(self, user: SimUser) -> None:
        self.users[user.id] = user
        self._insert("users", user.id)

    def _add_group(self, group: SimGroup) -> None:
        self.groups[group.id] = group
        self._insert("groups", group.id)

    def _add_integration(self, integration: SimIntegration) -> None:
        self.integrations[integration.id] = integration
        self._insert("integrations", integration.id)

    def _add_course(self, course: SimCourse) -> None:
        self.courses[course.id] = course
        self._insert("courses", course.id)

    def _add_attempt(self, attempt: SimAttempt) -> None:
        self.attempts[attempt.id] = attempt
        self._insert("attempts", attempt.id)

    # listing -------------------------------------------------------------------------------

    def page(
        self,
        collection: str,
        records: Mapping[str, Any],
        filters: Sequence[Filter],
        getters: Mapping[str, Callable[[Any], Any]],
        *,
        after: str | None,
        size: int,
    ) -> tuple[list[Any], str | None]:
        """One page of a collection in ``_id`` order, after ``after``; returns the last id if more remain."""
        ids = self.order.get(collection, [])
        start = bisect.bisect_right(ids, after) if after else 0
        out: list[Any] = []
        for position in range(start, len(ids)):
            record = records.get(ids[position])
            if record is None or not all(
                _match_filter(getters[field](record), op, operands) for field, op, operands in filters
            ):
                continue
            if len(out) == size:
                return out, out[-1].id
            out.append(record)
        return out, None

    # writes --------------------------------------------------------------------------------

    def add_user(
        self, *, first_name: str, last_name: str, mail: str, status: str = "active", lang: str = "en"
    ) -> SimUser:
        user = SimUser(
            id=self.new_id(),
            mail=mail,
            username=mail.split("@")[0],
            status=status,
            lang=lang,
            first_name=first_name,
            last_name=last_name,
        )
        self._add_user(user)
        return user

    def create_integration(self, body: JSON) -> SimIntegration:
        name = body.get("externalPlatform")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "invalidInput", "externalPlatform is required")
        if name in BUILTIN_PLATFORMS:
            raise ApiError(400, "reservedPlatformName", f"{name!r} is reserved for a built-in connector")
        if any(i.external_platform == name for i in self.integrations.values()):
            raise ApiError(400, "duplicateExternalPlatform", f"an integration named {name!r} already exists")
        group_id = body.get("groupId", self.root_group_id)
        if group_id not in self.groups:
            raise ApiError(404, "groupNotFound", f"group {group_id} not found")
        author_id = body.get("authorId", self.admin_id)
        if author_id not in self.users:
            raise ApiError(404, "userNotFound", f"user {author_id} not found")
        integration = SimIntegration(
            id=self.new_id(),
            external_platform=name,
            author_id=author_id,
            group_id=group_id,
            logo_url=body.get("externalPlatformLogoUrl"),
            default_completion=bool(body.get("defaultCompletion", False)),
            default_progress=int(body.get("defaultProgress", 0)),
        )
        self._add_integration(integration)
        return integration

    def integration(self, integration_id: str) -> SimIntegration:
        integration = self.integrations.get(integration_id)
        if integration is None:
            raise ApiError(404, "integrationNotFound", f"integration {integration_id} not found")
        return integration

    def course(self, course_id: str) -> SimCourse:
        course = self.courses.get(course_id)
        if course is None or course.status == "deleted":
            raise ApiError(404, "courseNotFound", f"course {course_id} not found")
        return course

    def external_course(self, integration_id: str, external_id: str) -> SimCourse:
        self.integration(integration_id)
        for course in self.courses.values():
            if (
                course.integration_id == integration_id
                and course.external
                and course.external["externalId"] == external_id
                and course.status != "deleted"
            ):
                return course
        raise ApiError(
            404, "courseNotFound", f"no course with externalId {external_id!r} in this integration"
        )

    def set_archived(self, course_id: str, archived: bool) -> SimCourse:
        course = self.course(course_id)
        if course.integration_id and not self.integration(course.integration_id).active:
            raise ApiError(400, "integrationInactive", "the course's integration is inactive")
        wanted = "archived" if archived else "published"
        if course.status != wanted:
            course.status = wanted
            course.modified_at = iso(datetime.now(UTC))
        return course

    # bulk operations -----------------------------------------------------------------------

    def submit(self, kind: str, integration_id: str, items: list[JSON]) -> SimBulkOperation:
        operation = SimBulkOperation(
            id=self.new_id(),
            type=kind,
            integration_id=integration_id,
            items=items,
            created_at=datetime.now(UTC),
            created_mono=self.clock(),
            delay=self.processing_delay,
        )
        self.operations[operation.id] = operation
        self._insert("operations", operation.id)
        return operation

    def running_operations(self) -> int:
        now = self.clock()
        return sum(1 for op in self.operations.values() if op.results is None and not self._due(op, now))

    @staticmethod
    def _due(operation: SimBulkOperation, now: float) -> bool:
        return operation.delay <= 0 or now - operation.created_mono >= operation.delay

    def advance(self, *, force: bool = False) -> int:
        """Finish every operation whose processing delay has passed (all of them if ``force``)."""
        now = self.clock()
        finished = 0
        for op_id in self.order["operations"]:
            operation = self.operations[op_id]
            if operation.results is None and (force or self._due(operation, now)):
                self._run(operation)
                finished += 1
        return finished

    def _run(self, operation: SimBulkOperation) -> None:
        handler: Callable[[SimIntegration, JSON], JSON] = {
            "importExternalCourses": self._import_course,
            "archiveExternalCourses": self._archive_external,
            "importExternalStatistics": self._import_statistic,
        }[operation.type]
        results: list[JSON] = []
        integration = self.integrations.get(operation.integration_id)
        for item in operation.items:
            if integration is None:
                results.append({"input": item, "status": "error", "errorMessage": "integrationNotFound"})
                continue
            try:
                results.append({"input": item, "status": "success", **handler(integration, item)})
            except ApiError as error:
                results.append(
                    {"input": item, "status": "error", "errorMessage": f"{error.code}: {error.message}"}
                )
        operation.results = results
        operation.status = "completed"
        operation.ended_at = operation.created_at + timedelta(seconds=max(operation.delay, 0.0))

    def _import_course(self, integration: SimIntegration, item: JSON) -> JSON:
        external_id = item["externalId"]
        now = iso(datetime.now(UTC))
        languages = [t["lang"] for t in item.get("translations") or [] if isinstance(t, dict) and "lang" in t]
        try:
            course = self.external_course(integration.id, external_id)
        except ApiError:
            course = SimCourse(
                id=self.new_id(),
                name=item["name"],
                description=item.get("description"),
                duration=item.get("duration"),
                default_lang=item["defaultLang"],
                author_id=item.get("authorId") or integration.author_id,
                group_id=integration.group_id,
                created_at=now,
                modified_at=now,
                status="published",
                type="external",
                external_platform=integration.external_platform,
                integration_id=integration.id,
            )
            self._add_course(course)
        else:
            # Upsert replaces the course's content; its _id, status (archived stays archived) and
            # history are kept.
            course.name = item["name"]
            course.description = item.get("description")
            course.duration = item.get("duration")
            course.default_lang = item["defaultLang"]
            course.modified_at = now
        course.translations = [lang for lang in languages if lang != course.default_lang]
        course.external = {key: value for key, value in item.items() if key != "authorId"}
        return {"resourceId": course.id}

    def _archive_external(self, integration: SimIntegration, item: JSON) -> JSON:
        course = self.external_course(integration.id, item["externalId"])
        course.status = "archived"
        course.modified_at = iso(datetime.now(UTC))
        return {"resourceId": course.id}

    def _find_user(self, identifier: JSON) -> SimUser:
        kind, value = identifier.get("type"), identifier.get("value")
        for user in self.users.values():
            if (kind == "internalId" and user.id == value) or (kind == "mail" and user.mail == value):
                if user.status == "deleted":
                    break
                return user
        raise ApiError(404, "userNotFound", f"no user with {kind} {value!r}")

    def _import_statistic(self, integration: SimIntegration, item: JSON) -> JSON:
        identifier = item["courseIdentifier"]
        if identifier.get("type") == "externalId":
            course = self.external_course(integration.id, identifier["value"])
        else:
            course = self.course(identifier.get("value", ""))
            if course.integration_id != integration.id:
                raise ApiError(
                    400,
                    "courseNotBelongToIntegration",
                    f"course {course.id} does not belong to integration {integration.id}",
                )
        user = self._find_user(item["userIdentifier"])
        first = parse_iso(item["firstActivityAt"])
        last = parse_iso(item["lastActivityAt"])
        progress = int(item["progress"])
        existing = [a for a in self.attempts.values() if a.user_id == user.id and a.course_id == course.id]
        ends = [parse_iso(a.completed_at or a.last_activity_at) for a in existing]
        new_attempt = bool(item.get("forceNew")) or not existing or all(first > end for end in ends)
        if not new_attempt:
            # An import updates the open attempts whose activity window covers firstActivityAt.
            targets = [
                a
                for a in existing
                if a.completed_at is None
                and parse_iso(a.first_activity_at) <= first <= max(parse_iso(a.last_activity_at), last)
            ]
            if not targets:
                raise ApiError(400, "invalidInput", "no open attempt covers firstActivityAt")
            for attempt in targets:
                self._apply_stat(attempt, item, progress, last)
            return {"resourceId": targets[0].id}
        attempt = SimAttempt(
            id=self.new_id(),
            course_id=course.id,
            user_id=user.id,
            version=course.version,
            lang=item.get("lang") or course.default_lang,
            first_activity_at=iso(first),
            last_activity_at=iso(last),
            time_spent=int(item["timeSpent"]),
            progress=progress,
        )
        self._apply_stat(attempt, item, progress, last)
        self._add_attempt(attempt)
        return {"resourceId": attempt.id}

    @staticmethod
    def _apply_stat(attempt: SimAttempt, item: JSON, progress: int, last: datetime) -> None:
        attempt.progress = progress
        attempt.last_activity_at = iso(last)
        attempt.time_spent = int(item["timeSpent"])
        if item.get("score") is not None:
            attempt.score = int(item["score"])
        if progress >= 100:
            # v2 has no completedAt input: lastActivityAt of a 100 % import is the completion date.
            attempt.completed_at = iso(last)

    # inspection ----------------------------------------------------------------------------

    def attempts_of(
        self, *, user_id: str | None = None, course_id: str | None = None
    ) -> Iterator[SimAttempt]:
        for attempt_id in self.order["attempts"]:
            attempt = self.attempts[attempt_id]
            if (user_id is None or attempt.user_id == user_id) and (
                course_id is None or attempt.course_id == course_id
            ):
                yield attempt


def _ascii(text: str) -> str:
    table = str.maketrans("éèëçïô", "eeecio")
    return text.lower().translate(table).replace(" ", "")


def require(item: Mapping[str, Any], fields: Iterable[str], where: str) -> None:
    """Reject a bulk item that misses a required field, as the API's body validation does."""
    missing = [name for name in fields if item.get(name) in (None, "")]
    if missing:
        raise ApiError(400, "invalidInput", f"{where}: missing required field(s) {', '.join(missing)}")
