"""The unified models: one frozen attrs class per LMS entity.

Field names follow the vendor coverage tables exactly. Every record carries:

- ``id``: our stable identifier, derived from (connector slug, model, remote id) by `make_id`, so the same
  remote record always gets the same id; references (``user_id``, ``course_id``, ...) use these ids.
- ``remote_id``: the vendor's identifier (for composite records, the parts joined with ``:``).
- ``changed_at`` / ``remote_deleted_at``: need memory of earlier reads; a plain ``list()`` leaves them
  ``None`` and `lmsconnect.sync` fills them from its store.
- ``remote_data``: the raw vendor payload(s) the record was built from, keyed by endpoint path.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import functools
from typing import Any, ClassVar, Final, Literal, Union

import attrs

__all__ = [
    "ENUMS",
    "MODELS",
    "Course",
    "CourseItem",
    "CourseItemType",
    "CourseProgression",
    "CourseProvider",
    "CourseRevision",
    "CourseType",
    "ModelName",
    "ProgressionStatus",
    "Record",
    "RevisionSkill",
    "RevisionStatus",
    "Skill",
    "User",
    "UserRole",
    "UserStatus",
    "make_id",
    "parse_id",
]

ModelName = Literal[
    "users",
    "course_providers",
    "courses",
    "course_revisions",
    "course_progressions",
    "skills",
    "revision_skills",
    "course_items",
]


class _UnifiedEnum(str, enum.Enum):
    """A string enum whose UNKNOWN member absorbs values nobody foresaw instead of crashing."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        return cls["UNKNOWN"]

    def __str__(self) -> str:
        return str(self.value)


class UserStatus(_UnifiedEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    UNKNOWN = "UNKNOWN"


class RevisionStatus(_UnifiedEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    UNKNOWN = "UNKNOWN"


class ProgressionStatus(_UnifiedEnum):
    ENROLLED = "ENROLLED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    DROPPED = "DROPPED"
    UNKNOWN = "UNKNOWN"


class CourseType(_UnifiedEnum):
    EXTERNAL = "EXTERNAL"
    UNKNOWN = "UNKNOWN"


class UserRole(_UnifiedEnum):
    """A user's primary role; the vendor's own role name is kept in ``User.remote_role``."""

    LEARNER = "LEARNER"
    INSTRUCTOR = "INSTRUCTOR"
    ADMIN = "ADMIN"
    UNKNOWN = "UNKNOWN"


class CourseItemType(_UnifiedEnum):
    """What a course item is; the vendor's own type name is kept in ``CourseItem.remote_type``."""

    SECTION = "SECTION"  # a section, chapter or topic that holds other items
    CONTENT = "CONTENT"  # a page, text or web content
    VIDEO = "VIDEO"
    AUDIO = "AUDIO"
    DOCUMENT = "DOCUMENT"  # a file, presentation or document
    LINK = "LINK"  # a link to an external URL
    SCORM = "SCORM"  # SCORM, xAPI/TinCan, cmi5 or another packaged content
    ASSESSMENT = "ASSESSMENT"  # a quiz, test or exam
    ASSIGNMENT = "ASSIGNMENT"
    SURVEY = "SURVEY"  # a survey, feedback or questionnaire
    LIVE_SESSION = "LIVE_SESSION"  # an instructor-led or virtual classroom session
    UNKNOWN = "UNKNOWN"


_PREFIX: Final[dict[str, str]] = {
    "users": "usr",
    "course_providers": "cpv",
    "courses": "crs",
    "course_revisions": "rev",
    "course_progressions": "prg",
    "skills": "skl",
    "revision_skills": "rsk",
    "course_items": "itm",
}
_MODEL_OF_PREFIX: Final = {v: k for k, v in _PREFIX.items()}


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


@functools.lru_cache(maxsize=4096)
def make_id(connector: str, model: ModelName, remote_id: str | int) -> str:
    """Our stable id for a remote record: deterministic, and reversible by `parse_id`.

    >>> make_id("moodle", "users", 42)
    'usr_nvxw6zdmmuptimq'

    Ids are reversible on purpose: an action given ``user_id`` needs the vendor's id back, and a lookup
    table would make actions depend on an earlier read. The prefix names the model, so passing a user
    id where a course id belongs is caught before any remote call. Cached: progressions repeat the same
    user and revision references many times, and base32 is pure Python.
    """
    payload = f"{connector}\x1f{remote_id}".encode()
    return f"{_PREFIX[model]}_{_b32(payload)}"


def parse_id(value: str) -> tuple[ModelName, str, str]:
    """Split an id made by `make_id` into (model, connector slug, remote id); ValueError if it is not one."""
    prefix, sep, body = value.partition("_")
    model: ModelName | None = _MODEL_OF_PREFIX.get(prefix)  # type: ignore[assignment]
    if not sep or model is None or not body:
        raise ValueError(f"{value!r} is not an lmsconnect id")
    try:
        connector, sep, remote = _unb32(body).decode().partition("\x1f")
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{value!r} is not an lmsconnect id") from None
    if not sep:
        raise ValueError(f"{value!r} is not an lmsconnect id")
    return model, connector, remote


def _opt_dt() -> Any:
    return attrs.field(default=None, validator=attrs.validators.optional(_aware))


def _aware(inst: object, attribute: attrs.Attribute[Any], value: dt.datetime) -> None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise TypeError(f"{attribute.name} must be a timezone-aware datetime, got {value!r}")


@attrs.frozen(kw_only=True)
class _Record:
    model: ClassVar[ModelName]

    id: str
    remote_id: str
    changed_at: dt.datetime | None = _opt_dt()
    remote_deleted_at: dt.datetime | None = _opt_dt()
    remote_data: dict[str, Any] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class User(_Record):
    """A person in the LMS."""

    model: ClassVar[ModelName] = "users"
    first_name: str | None = None
    last_name: str | None = None
    work_email: str | None = None
    status: UserStatus | None = None
    remote_created_at: dt.datetime | None = _opt_dt()
    # Beyond the coverage tables (issue 13); names as in the Truto reference.
    username: str | None = None
    role: UserRole | None = None
    remote_role: str | None = None  # the vendor's own role name, as it sent it
    locale: str | None = None  # as the vendor gives it, e.g. "en" or "en-US"
    timezone: str | None = None  # an IANA name such as "Europe/Paris" where the vendor gives one
    job_title: str | None = None
    remote_updated_at: dt.datetime | None = _opt_dt()
    custom_fields: dict[str, str] | None = None  # the vendor's custom profile fields, name -> value


@attrs.frozen(kw_only=True)
class CourseProvider(_Record):
    """The content source a course comes from (a vendor, a catalog, an integration)."""

    model: ClassVar[ModelName] = "course_providers"
    name: str | None = None
    remote_created_at: dt.datetime | None = _opt_dt()


@attrs.frozen(kw_only=True)
class Course(_Record):
    """A catalog entry; its content and title live on its revisions."""

    model: ClassVar[ModelName] = "courses"
    provider_id: str | None = None
    origin_id: str | None = None
    remote_created_at: dt.datetime | None = _opt_dt()


@attrs.frozen(kw_only=True)
class CourseRevision(_Record):
    """A version of a course; LMSs without versioning have exactly one per course."""

    model: ClassVar[ModelName] = "course_revisions"
    course_id: str | None = None
    title: str | None = None
    description: str | None = None
    remote_url: str | None = None
    status: RevisionStatus | None = None
    remote_created_at: dt.datetime | None = _opt_dt()
    # Beyond the coverage tables (issue 13).
    code: str | None = None  # the course code, short name or SKU
    languages: tuple[str, ...] | None = None  # language codes as the vendor gives them, e.g. ("en",)
    duration: int | None = None  # minutes, as in the upsert input
    categories: tuple[str, ...] | None = None  # category names, outermost first where nested
    thumbnail_url: str | None = None
    remote_updated_at: dt.datetime | None = _opt_dt()


@attrs.frozen(kw_only=True)
class CourseProgression(_Record):
    """A learner's record in a course revision (points at the revision, not the course)."""

    model: ClassVar[ModelName] = "course_progressions"
    user_id: str | None = None
    course_revision_id: str | None = None
    status: ProgressionStatus | None = None
    enrolled_at: dt.datetime | None = _opt_dt()
    completed_at: dt.datetime | None = _opt_dt()
    # Beyond the coverage tables (issue 13).
    started_at: dt.datetime | None = _opt_dt()
    last_activity_at: dt.datetime | None = _opt_dt()
    progress: float | None = None  # percent, 0-100
    score: float | None = None  # percent, 0-100 (the vendor's scale converted where it has another)
    time_spent: int | None = None  # seconds
    due_at: dt.datetime | None = _opt_dt()
    remote_updated_at: dt.datetime | None = _opt_dt()


@attrs.frozen(kw_only=True)
class Skill(_Record):
    """A skill or competency."""

    model: ClassVar[ModelName] = "skills"
    name: str | None = None
    remote_created_at: dt.datetime | None = _opt_dt()


@attrs.frozen(kw_only=True)
class RevisionSkill(_Record):
    """The join between a course revision and a skill it teaches."""

    model: ClassVar[ModelName] = "revision_skills"
    course_revision_id: str | None = None
    skill_id: str | None = None


@attrs.frozen(kw_only=True)
class CourseItem(_Record):
    """One piece of a course revision's content: a section, unit, module, activity or chapter."""

    model: ClassVar[ModelName] = "course_items"
    course_revision_id: str | None = None
    parent_id: str | None = None  # the section or chapter holding it (a `CourseItem` id), None at the top
    type: CourseItemType | None = None
    remote_type: str | None = None  # the vendor's own type name, as it sent it
    title: str | None = None
    position: int | None = None  # 0-based order within its parent (or the revision, at the top)
    duration: int | None = None  # minutes
    is_required: bool | None = None  # required for the course's completion


Record = Union[
    User, CourseProvider, Course, CourseRevision, CourseProgression, Skill, RevisionSkill, CourseItem
]

MODELS: Final[dict[ModelName, type[Record]]] = {
    cls.model: cls
    for cls in (
        User, CourseProvider, Course, CourseRevision, CourseProgression, Skill, RevisionSkill, CourseItem
    )
}

# Every unified enum, for converters that must turn stored strings back into members.
ENUMS: Final = (
    UserStatus, RevisionStatus, ProgressionStatus, CourseType, UserRole, CourseItemType
)

# Fields every record has, which no coverage table lists as a capability of its own.
BASE_FIELDS: Final = ("id", "remote_id", "changed_at", "remote_deleted_at", "remote_data")


def model_fields(model: ModelName) -> tuple[str, ...]:
    """All unified field names of a model, in declaration order."""
    return tuple(a.name for a in attrs.fields(MODELS[model]))


def model_name(model: ModelName | type[Record]) -> ModelName:
    """Accept a model key or class; return the key (ValueError naming the valid keys otherwise)."""
    if isinstance(model, str):
        if model in MODELS:
            return model
    elif isinstance(model, type) and model in MODELS.values():
        return model.model
    raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)} or their classes")
