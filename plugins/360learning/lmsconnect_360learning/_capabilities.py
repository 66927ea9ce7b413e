"""What the 360Learning connector supports, as data: the coverage table with its notes, plus the routes."""

from __future__ import annotations

from lmsconnect.plugin import Capabilities, action_support, model_support

__all__ = ["CAPABILITIES", "COMPLETION_NOTE", "ENROLLMENT_NOTE"]

ENROLLMENT_NOTE = (
    "The enrollment is processed asynchronously by 360Learning. The enrollment will be created in "
    "360Learning after processing completes."
)
COMPLETION_NOTE = (
    "The completion is processed asynchronously by 360Learning. It may take 1-30 seconds for the "
    "completion to appear. Wait before running a sync."
)
_WAIT = (
    "The result says `accepted`; `await lms.wait_until_visible(result, timeout_s=60)` (or the "
    "`wait_for_processing_s` setting) polls until the change shows in GET /api/v2/courses/stats or the "
    "timeout passes, and says which."
)
_INTEGRATION_ONLY = (
    "API v2 has no course-enrollment call and records progress only for courses of an integration, so "
    "this works for courses of the configured integration (`integration_id`, e.g. those made by "
    "upsert_courses); other courses fail with LMS.COURSE_NOT_IN_INTEGRATION."
)

CAPABILITIES = Capabilities.build(
    slug="360learning",
    name="360Learning",
    models={
        "users": model_support(
            "first_name",
            "last_name",
            "work_email",
            "status",
            "username",
            "locale",
            "job_title",
            note="GET /api/v2/users, 500 per page, following the Link header.",
            notes={
                "status": "`active` is ACTIVE; `invited` (never logged in) and `deleted` are INACTIVE.",
                "work_email": "The user's `mail`.",
                "remote_deleted_at": "For deleted users, the last of 360Learning's `deletedAt` dates.",
                "username": "`username`, the name a user can log in with where the platform allows it "
                "(an optional field: 360Learning otherwise knows users by `mail`).",
                "locale": "`lang`, the user's language as 360Learning codes it (`en`, `fr`, `nl_BE`, ...).",
                "job_title": "`job` (\"the role title of the user\").",
            },
            partial={
                "role": "Only with the `read_roles=True` option: 360Learning roles are per group "
                "membership, not on the user, so it costs GET /api/v2/groups plus one "
                "GET /api/v2/groups/{id}/roles per group (groups:read scope). The user's strongest role: "
                "owner, admin, userAdmin are ADMIN; editor, coach, contributor INSTRUCTOR; learner "
                "LEARNER; analyst (and a role name 360Learning adds later) UNKNOWN. None without the "
                "option, and for a user in no group.",
                "remote_role": "Only with `read_roles=True`: the 360Learning name of the user's strongest "
                "group role (as `role`).",
                "custom_fields": "Only with the `read_custom_fields=True` option: values come one user at "
                "a time, so it costs GET /api/v2/custom-fields (the names; customFields:read scope) plus "
                "one GET /api/v2/users/{id}/custom-fields/values per user. Name -> value; a date field's "
                "value is its `YYYY-MM-DD` string. None without the option and for a user with no value. "
                "The user's `custom` string is the profile's \"Additional information\", not a custom "
                "field (kept in remote_data).",
            },
            unsupported={
                "timezone": "UserDTO has no time zone.",
                "remote_updated_at": "UserDTO has no modification date.",
            },
        ),
        "course_providers": model_support(
            "name",
            note=(
                "API-based integrations (GET /api/v2/integrations), plus the built-in content "
                "platforms (Udemy, Coursera, ...) that appear only as `externalPlatform` on external "
                "courses (GET /api/v2/courses?type[eq]=external)."
            ),
            notes={
                "name": "The integration's `externalPlatform`.",
                "remote_id": "The integration `_id`; `externalPlatform:<name>` for a built-in platform.",
            },
        ),
        "courses": model_support(
            "provider_id",
            "remote_created_at",
            note="GET /api/v2/courses, 500 per page, archived courses included.",
            notes={
                "provider_id": "Set for external courses, from their `externalPlatform`; native and "
                "eLearning-standard courses have none.",
                "remote_created_at": "The course's `createdAt`.",
            },
        ),
        "course_revisions": model_support(
            "course_id",
            "title",
            "description",
            "remote_url",
            "status",
            "remote_created_at",
            "languages",
            "duration",
            "remote_updated_at",
            note=(
                "360Learning exposes only a course's current version (`currentVersionNumber`), so each "
                "course has one revision, sharing the course's remote id."
            ),
            notes={
                "title": "The course `name` in its default language.",
                "remote_url": "The course's page in the 360Learning web app, `<web_url>/course/play/<id>` "
                "(the form 360Learning's own links take; `web_url` defaults to the API host).",
                "status": "`published` is ACTIVE; `archived` and `deleted` are INACTIVE.",
                "languages": "`defaultLang`, then `sourceLang` (the language it was written in), then the "
                "`lang` of each published translation, each once, as 360Learning codes them (`en`, "
                "`pt_BR`, ...).",
                "duration": "`duration`, the estimated time to complete it, in minutes (rounded to a whole "
                "minute); absent when the author set none.",
                "remote_updated_at": "`modifiedAt`. 360Learning does not move it when a translation "
                "changes or the course is archived or restored.",
            },
            unsupported={
                "code": "CourseDTO has no course code.",
                "categories": "Courses carry tags, but only as ids through a call per course "
                "(GET /api/v2/courses/{id}/tags), which the course read does not make.",
                "thumbnail_url": "CourseDTO has no image; only an external course's import record "
                "(GET /api/v2/integrations/{id}/courses/{externalId}, a call per course) has `imageUrl`.",
            },
        ),
        "course_progressions": model_support(
            "user_id",
            "course_revision_id",
            "status",
            "enrolled_at",
            "completed_at",
            "started_at",
            "last_activity_at",
            "progress",
            "score",
            "time_spent",
            note=(
                "One progression per attempt, as GET /api/v2/courses/stats lists them (500 per page); "
                "a learner who retakes a course has one per attempt. The remote id is "
                "`<courseId>:<userId>:<attemptId>`."
            ),
            notes={
                "status": "COMPLETED once the attempt has `completedAt`, IN_PROGRESS when `progress` > 0, "
                "ENROLLED otherwise.",
                "enrolled_at": "The attempt's `firstActivityAt`: API v2 has no enrollment date.",
                "completed_at": "The attempt's `completedAt`.",
                "started_at": "The attempt's `firstActivityAt`.",
                "last_activity_at": "The attempt's `lastActivityAt`.",
                "progress": "The attempt's `progress`, a percentage (0–100).",
                "score": "The attempt's `score`, a percentage (0–100); absent until the learner is scored.",
                "time_spent": "The attempt's `timeSpent`, which 360Learning counts in milliseconds, in "
                "whole seconds.",
            },
            partial={
                "due_at": "Only with the `read_path_due_dates=True` option (GET /api/v2/paths/stats, "
                "2,000 path enrollments a page, pathStats:read scope), and only for attempts played in a "
                "path session (`pathSessionId`): the learner's `dueDate` in that session. A course taken "
                "on its own has no due date in 360Learning, and a step's own soft deadline (relative to "
                "enrollment) is not in the API's reads.",
            },
            unsupported={
                "remote_updated_at": "CourseStatDTO has no modification date (`last_activity_at` is the "
                "learner's last activity).",
            },
        ),
    },
    actions={
        "upsert_courses": action_support(
            "items.origin_id",
            "items.course.type",
            "items.course.title",
            "items.course.description",
            "items.course.course_url",
            "items.course.thumbnail_url",
            "items.course.duration",
            "items.course.languages",
            note=(
                "External courses of the configured integration, through the bulk import "
                "(PUT /api/v2/bulk/integrations/{integration_id}/courses), after one lookup per item "
                "(GET /api/v2/integrations/{integration_id}/courses/{externalId}); the connector waits for "
                "the bulk operation (up to `upsert_timeout_s`) and reads its per-item results. An item whose "
                "operation has not finished by then is reported `accepted`. Needs the integrations:bulk "
                "scope, which 360Learning grants on request."
            ),
            notes={
                "items.origin_id": "The course's `externalId` in the integration: the same origin_id finds "
                "and replaces the course made before (GET /api/v2/integrations/{id}/courses/{externalId}); "
                "an identical course is left `unchanged`.",
                "items.course.type": "EXTERNAL only.",
                "items.course.title": "`name`.",
                "items.course.course_url": "`launchUrl`; required by 360Learning.",
                "items.course.thumbnail_url": "`imageUrl`.",
                "items.course.duration": "Minutes (1–100000; more is InvalidInput before any call); 0 "
                "or none leaves it unset.",
                "items.course.languages": "The first is `defaultLang`, the others become translations "
                "(title and description repeated); none means `default_language`.",
            },
        ),
        "deactivate_course": action_support(
            "course_id",
            note=(
                "This action archives the course in 360Learning. It can be restored later. "
                "(PUT /api/v2/courses/{id}/archive with archived=true; `lms.restore_course(course_id)` "
                "sends archived=false.) Statistics are kept; the course can no longer be added to paths."
            ),
        ),
        "enroll_user": action_support(
            "user_id",
            "course_revision_id",
            flags={"asynchronous"},
            note=(
                f"{ENROLLMENT_NOTE} Route: a statistics import with progress 0 "
                "(POST /api/v2/bulk/integrations/{integration_id}/stats), which opens an attempt. "
                f"{_INTEGRATION_ONLY} A user with an open attempt is left `unchanged`. {_WAIT}"
            ),
        ),
        "complete_course": action_support(
            "course_progression_id",
            "completed_at",
            "score",
            flags={"asynchronous"},
            note=(
                f"{COMPLETION_NOTE} Route: a statistics import with progress 100 and "
                "`lastActivityAt` = completed_at (POST /api/v2/bulk/integrations/{integration_id}/stats), "
                "which closes the attempt. "
                f"{_INTEGRATION_ONLY} An attempt already completed is left `unchanged`: 360Learning "
                f"does not modify completed attempts. {_WAIT}"
            ),
            notes={
                "completed_at": "Sent as `lastActivityAt`; must not precede the attempt's start.",
                "score": "0–100, sent as `score` with result `success`.",
            },
        ),
    },
    features={
        "passthrough": "Any API v2 path, with the token, the 360-api-version header and the budgets.",
        "scope_testing": "One read per OAuth scope (users:read, integrations:read, courses:read, "
        "courseStats:read, bulkOperations:read); a missing scope is reported by its 360Learning name. "
        "Write scopes (courses:write, integrations:bulk) cannot be tested without writing.",
        "per_model_tests": "Reads the first record of each model.",
    },
    unsupported_notes={
        "skills": "360Learning API v2 exposes no skills.",
        "revision_skills": "360Learning API v2 exposes no skills.",
        "course_items": "360Learning API v2 lists no course content: no endpoint returns a course's "
        "chapters or activities (steps exist only for paths, whose steps are whole courses).",
    },
)
