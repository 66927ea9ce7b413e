"""The comparison page: lmsconnect's capability tables next to Kombo's coverage tables and Truto's model.

The lmsconnect columns come from the installed connectors' capability tables; the Kombo and Truto columns
come from the facts below, which are field NAMES only, copied from two public references (kept outside
the repository, so a test compares `KOMBO_MODELS`/`KOMBO_ACTIONS` with them where they are reachable):

- Kombo's per-connector coverage tables (docs.kombo.dev/lms/connectors/<tool>): which unified field each of
  Kombo's connectors fills. Our unified models use Kombo's field names, so a name here is one of ours.
- Truto's unified LMS API reference (truto.one/unified-apis/lms): one model for every connector (its only
  integration is TalentLMS), no per-connector coverage, every field "when available". `TRUTO_NAMES` says
  which Truto field has the meaning of each of our fields, under Truto's name.

`comparison_markdown` renders the page ``lmsconnect docs`` writes to ``docs/comparison.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from ._actions import ACTIONS, ActionName, action_fields
from ._capabilities import Capabilities, Support
from ._models import MODELS, ModelName, model_fields

__all__ = [
    "KOMBO_ACTIONS", "KOMBO_MODELS", "TRUTO_NAMES", "TRUTO_ONLY", "TRUTO_RESOURCES", "comparison_markdown",
]

_BASE: Final = ("id", "remote_id", "changed_at", "remote_deleted_at")

#: Kombo's coverage tables, model by model, per Kombo tool slug (the "Models" tab of each connector page).
KOMBO_MODELS: Final[Mapping[str, Mapping[ModelName, tuple[str, ...]]]] = {
    "360learning": {
        "users": (*_BASE, "first_name", "last_name", "work_email", "status", "remote_data"),
        "course_providers": (*_BASE, "name", "remote_data"),
        "courses": (*_BASE, "provider_id", "remote_created_at", "remote_data"),
        "course_revisions": (
            *_BASE, "course_id", "title", "description", "remote_url", "status", "remote_created_at",
            "remote_data",
        ),
        "course_progressions": (
            *_BASE, "user_id", "course_revision_id", "status", "enrolled_at", "completed_at", "remote_data",
        ),
    },
    "moodle": {
        "users": (*_BASE, "first_name", "last_name", "work_email", "status", "remote_data"),
        "skills": (*_BASE, "name", "remote_created_at", "remote_data"),
        "courses": (*_BASE, "remote_created_at", "remote_data"),
        "course_revisions": (
            *_BASE, "course_id", "title", "description", "status", "remote_created_at", "remote_data",
        ),
        "course_progressions": (
            *_BASE, "user_id", "course_revision_id", "status", "completed_at", "remote_data",
        ),
        "revision_skills": ("course_revision_id", "skill_id", "id", "changed_at", "remote_deleted_at"),
    },
    "talentlms": {
        "users": (
            *_BASE, "first_name", "last_name", "work_email", "status", "remote_created_at", "remote_data",
        ),
        "courses": (*_BASE, "remote_created_at", "remote_data"),
        "course_revisions": (
            *_BASE, "course_id", "title", "description", "status", "remote_created_at", "remote_data",
        ),
        "course_progressions": (
            *_BASE, "user_id", "course_revision_id", "status", "completed_at", "remote_data",
        ),
    },
}

_UPSERT: Final = ("items.origin_id", "items.course.type", "items.course.title", "items.course.description")

#: Kombo's coverage tables, action by action (the "Actions" tab): the input fields each connector takes.
KOMBO_ACTIONS: Final[Mapping[str, Mapping[ActionName, tuple[str, ...]]]] = {
    "360learning": {
        "upsert_courses": (
            *_UPSERT, "items.course.course_url", "items.course.thumbnail_url", "items.course.duration",
            "items.course.languages",
        ),
        "deactivate_course": ("course_id",),
        "enroll_user": ("user_id", "course_revision_id"),
        "complete_course": ("course_progression_id", "completed_at", "score"),
    },
    "moodle": {
        "upsert_courses": (*_UPSERT, "items.course.languages"),
        "deactivate_course": ("course_id",),
        "enroll_user": ("user_id", "course_revision_id"),
        "complete_course": ("course_progression_id", "completed_at", "score"),
    },
    "talentlms": {
        "upsert_courses": (*_UPSERT, "items.course.duration"),
        "deactivate_course": ("course_id",),
        "enroll_user": ("user_id", "course_revision_id"),
    },
}

#: Truto's resource holding each of our models' data (Truto has no providers, revisions or skills: its
#: Course is our course and its one revision together).
TRUTO_RESOURCES: Final[Mapping[ModelName, str]] = {
    "users": "Users",
    "courses": "Courses",
    "course_revisions": "Courses",
    "course_progressions": "Course-enrollments",
    "course_items": "Course-items",
}

#: Our field -> the Truto field with its meaning, where Truto has one. Truto stores nothing (it passes
#: calls through), so its ``id`` is the LMS's own: our ``remote_id``.
TRUTO_NAMES: Final[Mapping[ModelName, Mapping[str, str]]] = {
    "users": {
        "remote_id": "id",
        "first_name": "first_name",
        "last_name": "last_name",
        "work_email": "emails",
        "status": "status",
        "remote_created_at": "created_at",
        "username": "username",
        "role": "role",
        "locale": "locale",
        "timezone": "timezone",
        "job_title": "job_title",
        "remote_updated_at": "updated_at",
        "custom_fields": "custom_fields",
    },
    "courses": {"remote_id": "id", "remote_created_at": "created_at"},
    "course_revisions": {
        "remote_id": "id",
        "title": "title",
        "description": "description",
        "remote_url": "urls",
        "status": "status",
        "remote_created_at": "created_at",
        "code": "code",
        "languages": "language (one, the primary)",
        "duration": "duration_seconds (seconds; ours are minutes)",
        "categories": "categories",
        "remote_updated_at": "updated_at",
    },
    "course_progressions": {
        "remote_id": "id",
        "user_id": "user",
        "course_revision_id": "course",
        "status": "status",
        "enrolled_at": "enrolled_at",
        "completed_at": "completed_at",
        "started_at": "started_at",
        "last_activity_at": "last_activity_at",
        "progress": "progress_percent",
        "score": "score",
        "time_spent": "time_spent_seconds",
        "due_at": "due_at",
        "remote_updated_at": "updated_at",
    },
    "course_items": {
        "remote_id": "id",
        "course_revision_id": "course",
        "parent_id": "parent",
        "type": "type",
        "title": "title",
        "position": "position",
        "duration": "duration_seconds (seconds; ours are minutes)",
        "is_required": "is_required",
    },
}

#: Truto fields with no lmsconnect field, per Truto resource (said on the page, for a fair comparison).
TRUTO_ONLY: Final[Mapping[str, tuple[str, ...]]] = {
    "Users": ("name", "phones", "organization", "manager"),
    "Courses": ("type", "level", "tags", "organization", "published_at", "custom_fields"),
    "Course-enrollments": (
        "assigned_at", "is_mandatory", "assigned_by", "attempt_number", "attempts_count", "urls",
        "created_at", "custom_fields",
    ),
    "Course-items": ("description", "urls", "created_at", "updated_at", "custom_fields"),
}

_NONE: Final = "—"


def _ours(table: Capabilities, model: ModelName, field: str) -> str:
    cap = table.models[model]
    if not cap.supported:
        return _NONE
    support = cap.field(field).support
    if support is Support.UNSUPPORTED:
        return _NONE
    return "yes" if support is Support.SUPPORTED else "partial"


def _truto(model: ModelName, field: str) -> str:
    name = TRUTO_NAMES.get(model, {}).get(field)
    if name is None:
        return _NONE
    if name == field:
        return "same"
    truto, _, remark = name.partition(" ")
    return f"`{truto}` {remark}".rstrip()


def _kombo(slug: str, listed: tuple[str, ...], field: str) -> str:
    """Kombo's cell: `listed` is what its coverage table lists for the model or action at hand."""
    if slug not in KOMBO_MODELS:
        return "n/a"
    return "yes" if field in listed else _NONE


def _pairs(tables: list[Capabilities]) -> str:
    """The column heads of a table's connector columns: Kombo's, then ours, per connector."""
    return " | ".join(f"Kombo {t.slug} | lmsconnect {t.slug}" for t in tables)


def _has(table: Capabilities, model: ModelName, field: str) -> bool:
    return _ours(table, model, field) != _NONE


def comparison_markdown(tables: Iterable[Capabilities], *, pages: str | None = None) -> str:
    """The comparison page for the installed connectors' tables (in the order given); `pages` is the
    capability pages' folder relative to the page, to link them."""
    tables = list(tables)
    out = [
        "# lmsconnect, Kombo and Truto, field by field",
        "",
        "<!-- Generated by `lmsconnect docs` from the installed connectors' capability tables and the",
        "     Kombo/Truto facts in lmsconnect/_comparison.py. Do not edit. -->",
        "",
        "Per model, each field of lmsconnect's unified model: whether each installed connector fills it",
        "(its capability table: *yes*, *partial*, or — with the reason on the connector's capability page),",
        "whether Kombo's connector for the same LMS fills it (Kombo's coverage tables), and the field of",
        "Truto's unified LMS model with the same meaning (*same* when the name is ours; Truto publishes one",
        "model, not per-connector coverage, and its only integration is TalentLMS). *n/a*: Kombo has no",
        "connector for that LMS. Truto stores nothing (it passes each call through), so its `id` is the",
        "LMS's own (our `remote_id`) and it has no `changed_at` or `remote_deleted_at`.",
        "",
        *(
            ["Why a field is partial or missing, connector by connector: "
             + ", ".join(f"[{t.name}]({pages}/{t.slug}.md)" for t in tables) + ".", ""]
            if pages is not None and tables else []
        ),
        "## Summary",
        "",
        "Fields filled per model, partial ones included (the base fields `id`, `remote_id`, `changed_at`,",
        "`remote_deleted_at`, `remote_data` too):",
        "",
        f"| model | {_pairs(tables)} |",
        "|---|" + "---|---|" * len(tables),
    ]
    for model in MODELS:
        cells = []
        for table in tables:
            kombo = KOMBO_MODELS.get(table.slug)
            cells.append(str(len(kombo.get(model, ()))) if kombo is not None else "n/a")
            cells.append(str(sum(_has(table, model, f) for f in model_fields(model))))
        out.append(f"| {model} | " + " | ".join(cells) + " |")
    out.append("")
    only = _only_ours(tables)
    if only:
        out += ["**Only in lmsconnect** (filled by an installed connector; no Kombo connector and no Truto",
                "field has it):", ""]
        out += [f"- {model}: " + ", ".join(f"`{f}`" for f in fields) for model, fields in only.items()]
        out.append("")
    beyond = {t.slug: _beyond_kombo(t) for t in tables if t.slug in KOMBO_MODELS}
    if any(beyond.values()):
        out += ["**Beyond Kombo's connector for the same LMS** (filled here, not in Kombo's coverage table):",
                ""]
        out += [
            f"- {slug}: " + "; ".join(f"{model} " + ", ".join(f"`{f}`" for f in fields)
                                      for model, fields in found.items())
            for slug, found in beyond.items()
            if found
        ]
        out.append("")
    out += ["## Models", ""]
    for model in MODELS:
        out += _model_section(model, tables)
    out += ["## Actions", "", "Truto's LMS API is read-only; the actions compare with Kombo only.", ""]
    for action in ACTIONS:
        out += _action_section(action, tables)
    out += ["## Truto fields lmsconnect does not have", ""]
    out += [f"- {resource}: " + ", ".join(f"`{f}`" for f in names) for resource, names in TRUTO_ONLY.items()]
    return "\n".join(out) + "\n"


def _only_ours(tables: list[Capabilities]) -> dict[ModelName, list[str]]:
    found: dict[ModelName, list[str]] = {}
    for model in MODELS:
        for field in model_fields(model):
            if field in TRUTO_NAMES.get(model, {}):
                continue
            if any(field in kombo.get(model, ()) for kombo in KOMBO_MODELS.values()):
                continue
            if any(_has(t, model, field) for t in tables):
                found.setdefault(model, []).append(field)
    return found


def _beyond_kombo(table: Capabilities) -> dict[ModelName, list[str]]:
    kombo = KOMBO_MODELS[table.slug]
    found: dict[ModelName, list[str]] = {}
    for model in MODELS:
        for field in model_fields(model):
            if _has(table, model, field) and field not in kombo.get(model, ()):
                found.setdefault(model, []).append(field)
    return found


def _model_state(table: Capabilities, model: ModelName) -> str:
    cap = table.models[model]
    if not cap.supported:
        return f"{table.slug} not supported"
    return f"{table.slug} read on request" if not cap.by_default else f"{table.slug} supported"


def _model_section(model: ModelName, tables: list[Capabilities]) -> list[str]:
    resource = TRUTO_RESOURCES.get(model)
    head = f"### {model}"
    truto = f"Truto: {resource}." if resource else "Truto: no such resource."
    ours = "lmsconnect: " + ", ".join(_model_state(t, model) for t in tables) + "."
    out = [head, "", f"{truto} {ours}", ""]
    out.append(f"| field | Truto | {_pairs(tables)} |")
    out.append("|---|---|" + "---|---|" * len(tables))
    for field in model_fields(model):
        cells = [
            cell
            for t in tables
            for cell in (_kombo(t.slug, KOMBO_MODELS.get(t.slug, {}).get(model, ()), field),
                         _ours(t, model, field))
        ]
        out.append(f"| `{field}` | {_truto(model, field)} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def _action_section(action: ActionName, tables: list[Capabilities]) -> list[str]:
    out = [f"### {action}", ""]
    out.append(f"| input field | {_pairs(tables)} |")
    out.append("|---|" + "---|---|" * len(tables))
    for field in action_fields(action):
        cells = []
        for t in tables:
            cells.append(_kombo(t.slug, KOMBO_ACTIONS.get(t.slug, {}).get(action, ()), field))
            cap = t.actions[action]
            support = cap.field(field).support if cap.supported else Support.UNSUPPORTED
            cells.append({Support.SUPPORTED: "yes", Support.PARTIAL: "partial"}.get(support, _NONE))
        out.append(f"| `{field}` | " + " | ".join(cells) + " |")
    out.append("")
    return out
