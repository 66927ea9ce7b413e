"""The Moodle connector's capability table and the web-service functions each model and action needs.

`REQUIRED_FUNCTIONS` is what `check()` compares with the functions ``core_webservice_get_site_info``
lists for the token, and what docs/moodle-setup.md tells administrators to add to the service.
"""

from __future__ import annotations

from typing import Final

from lmsconnect.plugin import Capabilities, action_support, model_support

from ._report import REPORT_FUNCTIONS

__all__ = [
    "ALL_FUNCTIONS",
    "CAPABILITIES",
    "CATEGORIES_FUNCTION",
    "DELETED_USERS_FUNCTION",
    "REPORT_FUNCTIONS",
    "REQUIRED_FUNCTIONS",
    "SCORES_FUNCTION",
    "SITE_INFO",
]

SITE_INFO: Final = "core_webservice_get_site_info"

REQUIRED_FUNCTIONS: Final[dict[str, tuple[str, ...]]] = {
    "users": ("core_user_get_users",),
    "courses": ("core_course_get_courses",),
    "course_revisions": ("core_course_get_courses",),
    "course_progressions": (
        "core_course_get_courses",
        "core_enrol_get_enrolled_users",
        "core_enrol_get_users_courses",
        "core_completion_get_course_completion_status",
    ),
    "skills": ("core_competency_list_competency_frameworks", "core_competency_list_competencies"),
    "revision_skills": ("core_course_get_courses", "core_competency_list_course_competencies"),
    "course_items": ("core_course_get_courses", "core_course_get_contents"),
    "upsert_courses": (
        "core_course_get_courses_by_field",
        "core_course_create_courses",
        "core_course_update_courses",
    ),
    "deactivate_course": ("core_course_update_courses",),
    "enroll_user": ("core_enrol_get_enrolled_users", "enrol_manual_enrol_users"),
    "complete_course": (
        "core_completion_get_course_completion_status",
        "core_course_get_contents",
        "gradereport_user_get_grade_items",
        "core_grades_update_grades",
        "core_completion_override_activity_completion_status",
    ),
}

DELETED_USERS_FUNCTION: Final = "core_user_get_users_by_field"
"""Needed for users only with ``include_deleted_users=True``."""

CATEGORIES_FUNCTION: Final = "core_course_get_categories"
"""Needed for course revisions only with ``course_categories=True``."""

SCORES_FUNCTION: Final = "gradereport_user_get_grade_items"
"""Needed for course progressions only with ``progression_scores=True``."""

ALL_FUNCTIONS: Final = frozenset(f for fs in REQUIRED_FUNCTIONS.values() for f in fs) | {
    SITE_INFO,
    DELETED_USERS_FUNCTION,
    CATEGORIES_FUNCTION,
    *REPORT_FUNCTIONS,
}
"""``REPORT_FUNCTIONS`` replace the functions of course_progressions with ``progressions_via_report``."""

CAPABILITIES: Final = Capabilities.build(
    slug="moodle",
    name="Moodle",
    models={
        "users": model_support(
            "first_name",
            "last_name",
            "work_email",
            "status",
            "username",
            "locale",
            "timezone",
            "custom_fields",
            note="One call (core_user_get_users) for every user; the guest account is left out. Users "
            "Moodle has deleted are not listed, so lmsconnect.sync marks them deleted (remote_deleted_at). "
            "With include_deleted_users=True they are listed too: Moodle keeps their rows, which only "
            "core_user_get_users_by_field returns, so they are looked for in the gaps of the id sequence "
            "(and up to 100 ids past the highest), 100 ids per call.",
            unsupported={
                "remote_created_at": "core_user_get_users does not return when an account was created.",
                "remote_updated_at": "core_user_get_users does not return when a profile last changed.",
                "role": "Moodle roles are given per context (a course, a category), not to a person: a "
                "site-wide role would take a call per user and course; each course's roles are in "
                "course_progressions' remote_data.",
                "remote_role": "See role: Moodle has no single role per user.",
                "job_title": "Moodle profiles have no job title (department and institution are in "
                "remote_data); a site that adds one as a custom profile field finds it in custom_fields.",
            },
            notes={
                "username": "The login name; None for listed deleted users, whose username Moodle rewrote.",
                "locale": "The user's language pack name as Moodle gives it, e.g. 'en', 'pt_br'.",
                "timezone": "The user's own time zone (an IANA name) when they chose one; None when they "
                "keep the site's default (Moodle's '99'), which no function the connector holds names.",
                "custom_fields": "Custom profile fields with a value, by short name (e.g. 'employeeid'), "
                "values as Moodle stores them (a checkbox '1', a date as Unix seconds).",
                "status": "Suspended users are INACTIVE (deleted ones too, when listed).",
                "remote_deleted_at": "Filled by lmsconnect.sync when a user disappears; with "
                "include_deleted_users=True, the deletion time Moodle writes into a deleted account's "
                "username.",
                "work_email": "For listed deleted users, the address Moodle kept in the renamed username.",
            },
        ),
        "skills": model_support(
            "name",
            "remote_created_at",
            note="Skills are sourced from Moodle competencies. Each competency within a competency framework "
            "is mapped to a skill. Frameworks of every context are read (one call), then their competencies "
            "(one call per 500 competencies of a framework).",
            notes={"name": "The competency's short name."},
        ),
        "courses": model_support(
            "origin_id",
            "remote_created_at",
            note="Every course except the site course (id 1), from one core_course_get_courses call.",
            notes={"origin_id": "The course ID number (idnumber), where upsert_courses keeps origin_id."},
        ),
        "course_revisions": model_support(
            "course_id",
            "title",
            "description",
            "status",
            "remote_created_at",
            "remote_url",
            "code",
            "languages",
            "remote_updated_at",
            note="Moodle has no course versions: one revision per course, with the course's id. With "
            "course_categories, one more call (core_course_get_categories) for the whole site.",
            partial={
                "categories": "Only with course_categories (one more call per read): the names of the "
                "course's category and its parents, outermost first.",
            },
            unsupported={
                "duration": "Moodle courses have no duration, only start and end dates (calendar dates, "
                "not a learning time).",
                "thumbnail_url": "core_course_get_courses has no course image; the functions that have one "
                "(core_course_get_courses_by_field, core_enrol_get_users_courses) give a generated pattern "
                "when none was uploaded, which is not the course's image.",
            },
            notes={
                "code": "The course short name (unique on the site).",
                "languages": "The course's forced language (one language pack name, e.g. 'en'); None when "
                "the course forces none and each learner sees it in their own language.",
                "remote_updated_at": "When the course settings last changed (timemodified); not its content.",
                "title": "The course full name.",
                "description": "The course summary (HTML as Moodle stores it).",
                "status": "ACTIVE when the course is visible, INACTIVE when hidden.",
                "remote_url": "The course page, /course/view.php?id=...",
            },
        ),
        "course_progressions": model_support(
            "user_id",
            "course_revision_id",
            "status",
            "completed_at",
            "progress",
            note="One per enrolled user and course, read in one of two ways. By default: one call per "
            "course (core_enrol_get_enrolled_users, two for a hidden course), one per user with an active "
            "enrolment (core_enrol_get_users_courses gives Moodle's completed flag and progress for all of "
            "the user's courses), and one per progression Moodle reports complete "
            "(core_completion_get_course_completion_status, for completed_at) or that is active in a hidden "
            "course the user cannot see. With progressions_via_report: one call per report_page_size "
            "enrolments (core_reportbuilder_retrieve_report) of a custom report an administrator sets up "
            "once (docs/moodle-setup.md), plus core_reportbuilder_list_reports to find it; the report's "
            "shape is checked and a report that does not fit is refused, never read approximately. Memory "
            "stays flat whatever the site size on both.",
            notes={
                "status": "Moodle distinguishes between 'complete pass' and 'complete fail' (activity "
                "completed but grade below passing threshold) – both are currently unified to `COMPLETED`. "
                "ENROLLED until an activity counts as complete, then IN_PROGRESS; DROPPED when Moodle no "
                "longer counts the enrolment as active (suspended, its method disabled, or outside its "
                "dates). Courses without completion tracking give ENROLLED. The status is what Moodle "
                "reports: after complete_course it may lag until Moodle's completion cron task has "
                "aggregated the course. With progressions_via_report it comes from Moodle's progress, which "
                "leaves failed activities out: an active learner of a hidden course whose completed "
                "activities all failed is ENROLLED there, IN_PROGRESS by default (where the default read "
                "has only the completion criteria).",
                "progress": "Moodle's progress: the percentage of the course's activities with completion "
                "tracking that the learner completed (failed ones do not count). None where completion is "
                "not tracked (a course without it, a teacher) and, by default, in hidden courses and "
                "dropped enrolments. With progressions_via_report the report's 'Student progress', to one "
                "decimal, for every enrolment: 0 also where completion is not tracked (the report cannot say "
                "which). A value outside 0-100 is refused (InvalidRemoteResponse).",
                "completed_at": "By default the time Moodle completed the last completion criterion (any "
                "criterion for courses completed by 'any'). With progressions_via_report the course "
                "completion time Moodle's aggregation recorded, to the minute only (the report formats "
                "dates as text without seconds, in the time zone of the token's user, given as "
                "report_timezone).",
            },
            partial={
                "enrolled_at": "Only with progressions_via_report: when the enrolment starts (its start "
                "date, else its creation), to the minute; no stock web service gives it.",
                "last_activity_at": "By default only: when the learner last accessed the course (lastaccess "
                "of core_enrol_get_users_courses); None when they never did, and in hidden courses and "
                "dropped enrolments, which that function leaves out.",
                "score": "Only with progression_scores (one more call per active progression, "
                "gradereport_user_get_grade_items; default read only): the course total as a percentage of "
                "its range, None while ungraded. A total above its maximum (a site may allow such grades) "
                "is left out with a logged warning.",
            },
            unsupported={
                "started_at": "No web service gives when a learner started a course (course_completions' "
                "timestarted is not exposed).",
                "time_spent": "Moodle does not record time spent in a course, only log events.",
                "due_at": "Moodle has no due date for a learner's course; the course end date and an "
                "enrolment's end are when access ends, not a deadline.",
                "remote_updated_at": "No web service gives when an enrolment or its completion last changed.",
            },
        ),
        "revision_skills": model_support(
            "course_revision_id",
            "skill_id",
            note="The course competencies of each course (one call per course).",
        ),
        "course_items": model_support(
            "course_revision_id",
            "parent_id",
            "type",
            "remote_type",
            "title",
            "position",
            by_default=False,
            note="Read on request only (sync(models=[..., 'course_items'])): one core_course_get_contents "
            "call per course, on top of core_course_get_courses. Each section is an item at the top "
            "(remote id 'section:<id>'), each activity or resource an item in its section ('module:<course "
            "module id>'); Moodle 5 subsections are SECTION items holding their own modules. What students "
            "cannot see (a hidden section or module, visible 0) is left out with what it holds, so hiding "
            "one shows as its deletion.",
            notes={
                "type": "From the module type: page, book, label, lesson CONTENT; resource, folder DOCUMENT; "
                "url LINK; scorm, h5pactivity, imscp SCORM; quiz ASSESSMENT; assign, workshop ASSIGNMENT; "
                "feedback, survey, questionnaire, choice SURVEY; bigbluebuttonbn LIVE_SESSION; "
                "subsection SECTION; any other (forum, glossary, lti, ...) UNKNOWN.",
                "remote_type": "The module type (modname), or 'section'.",
                "title": "The section or module name (for a label, its text as Moodle shortens it).",
                "position": "The order Moodle shows, 0-based among the visible items of the same parent.",
            },
            partial={
                "is_required": "False for an activity without completion tracking (no completion criterion "
                "can require it); None for tracked ones and for sections: which activities the course's "
                "completion criteria select, no web service says without a learner.",
            },
            unsupported={
                "duration": "Moodle activities have no duration (a quiz's time limit is an attempt's "
                "limit, not the activity's length).",
            },
        ),
    },
    actions={
        "upsert_courses": action_support(
            "items.origin_id",
            "items.course.type",
            "items.course.title",
            "items.course.description",
            "items.course.languages",
            note="origin_id is kept in the course ID number (idnumber), looked up with "
            "core_course_get_courses_by_field: an existing course is updated (full name, summary, forced "
            "language) and answers `unchanged` when nothing differs; a new one is created in the configured "
            "category with origin_id as short name. Repeated upserts never duplicate a course. Moodle "
            "courses have no duration (only start and end dates, calendar dates rather than a learning "
            "time), so items.course.duration is not supported and needs no bound.",
            notes={
                "items.course.type": "Only EXTERNAL exists; nothing is sent.",
                "items.course.title": "The course full name.",
                "items.course.description": "The course summary (HTML).",
                "items.course.languages": "The first language becomes the course's forced language; its "
                "Moodle language pack must be installed (e.g. 'de', 'pt_br' for 'pt-BR').",
            },
        ),
        "deactivate_course": action_support(
            "course_id",
            note="This action sets the course visibility to hidden in Moodle. The course will not be visible "
            "to students but can be restored later (visible=1); enrolments and progress are kept.",
        ),
        "enroll_user": action_support(
            "user_id",
            "course_revision_id",
            note='By default, the user will be enrolled in the course with a role ID 5, which is "Student" '
            "by default (config enrol_role_id). Manual enrolment (enrol_manual_enrol_users): a course "
            "without "
            "an enabled manual enrolment instance fails with LMS.NO_MANUAL_ENROLMENT. An existing enrolment "
            "answers `unchanged`.",
        ),
        "complete_course": action_support(
            "course_progression_id",
            "score",
            note="Completion is set by overriding all activity completion statuses in the course. If the "
            "course has completion criteria requiring all activities to be complete, this will mark the "
            "course as complete. The score is applied to all activities that have grade items configured in "
            "the course gradebook. Moodle aggregates activity grades into the course total automatically. "
            "Scoring requires the course to have at least one graded activity – courses without grade items "
            "cannot receive a score (LMS.NO_GRADED_ACTIVITY, nothing changed). The result is `updated` when "
            "Moodle already reports the course complete, `accepted` when completion awaits Moodle's "
            "completion cron task: a completion that comes from a grade (any score) needs two runs of it, "
            "so with cron every minute it shows within about two minutes; wait_until_visible polls for it "
            "(by default up to 180 s). The grades and overrides go two at a time, and Moodle's transient "
            "refusals (dmlwriteexception, ex_unabletolock) are repeated and counted in stats.retries.",
            partial={
                "completed_at": "Not settable through Moodle's web services: Moodle stamps the overrides "
                "and grades with the time of the call, which is what progressions then show.",
            },
            notes={
                "score": "0–100, scaled onto each graded activity's grade range (core_grades_update_grades).",
            },
        ),
    },
    features={
        "passthrough": "Any wsfunction with the connection's token: "
        "passthrough('POST', 'core_course_get_courses', params={...}) (nested parameters are "
        "PHP-style encoded).",
        "scope_testing": "core_webservice_get_site_info lists the functions the token's service allows; "
        "check() names the missing ones per model and action.",
        "per_model_tests": "",
    },
)
