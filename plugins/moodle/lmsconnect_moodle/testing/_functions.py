"""The simulated web-service functions: parameter descriptions, behaviour and the JSON they answer.

Each function renders its answer with the keys, order, types and nesting recorded from Moodle 5.0
(``fixtures/moodle-5``), including the keys Moodle leaves out when a value is empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import zoneinfo
from collections.abc import Callable
from typing import Any, Final

import attrs

from ._site import (
    ASSIGNABLE_ROLES,
    HIDDEN_COURSE_ROLES,
    ROLES,
    Category,
    Competency,
    Course,
    CourseCompetency,
    CustomReport,
    Enrolment,
    Evidence,
    Framework,
    Module,
    Section,
    Site,
    User,
    UserCompetencyCourse,
    add_module,
)
from ._ws import (
    OPTIONAL,
    Bool,
    Float,
    Int,
    Multiple,
    Single,
    Text,
    WSError,
    invalid_parameter,
    missing_record,
    moodle_exception,
)

__all__ = ["FUNCTIONS", "Context", "WSFunction"]

CORE_VERSION: Final = "2025041406.11"
PLUGIN_VERSION: Final = "2025041400"
RELEASE: Final = "5.0.6+ (Build: 20260403)"
THEME_REV: Final = 1795431183


@attrs.frozen
class Context:
    """One call: the site, the URL the site answers on, the token's user and the debugging switch."""

    site: Site
    siteurl: str
    userid: int
    functions: tuple[str, ...]
    debug: bool = False


Handler = Callable[[Context, dict[str, Any]], Any]


@attrs.frozen
class WSFunction:
    name: str
    params: Single
    handler: Handler

    @property
    def version(self) -> str:
        return CORE_VERSION if self.name.startswith("core_") else PLUGIN_VERSION


FUNCTIONS: dict[str, WSFunction] = {}


def _function(name: str, **params: Any) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        FUNCTIONS[name] = WSFunction(name=name, params=Single(keys=params), handler=handler)
        return handler

    return register


# -- shared renderers ------------------------------------------------------------------------------------


def _link(ctx: Context, module: Module) -> str:
    url = f"{ctx.siteurl}/mod/{module.modname}/view.php?id={module.id}"
    return f'<a href="{url}">{html.escape(module.name)}</a>'


def _icon(ctx: Context, module: Module) -> str:
    return f"{ctx.siteurl}/theme/image.php/boost/{module.modname}/{THEME_REV}/monologo?filtericon=1"


def _add_profile(ctx: Context, user: User, out: dict[str, Any]) -> None:
    """The optional profile keys Moodle adds to a user in both user listings, in Moodle's order."""
    if user.description:
        out["description"] = user.description
        out["descriptionformat"] = 1
    if user.city:
        out["city"] = user.city
    if user.country:
        out["country"] = user.country
    out["profileimageurlsmall"] = _img(ctx, "f2")
    out["profileimageurl"] = _img(ctx, "f1")


def _img(ctx: Context, size: str) -> str:
    return f"{ctx.siteurl}/theme/image.php/boost/core/{THEME_REV}/u/{size}"


def _user_or_missing(ctx: Context, userid: int) -> User:
    user = ctx.site.users.get(userid)
    if user is None or user.deleted:
        raise missing_record("user", "id = ? AND deleted = ?", [userid, 0])
    return user


def _course_or_missing(ctx: Context, courseid: int) -> Course:
    course = ctx.site.courses.get(courseid)
    if course is None:
        raise missing_record("course", "id = ?", [courseid])
    return course


def _render_user(ctx: Context, user: User) -> dict[str, Any]:
    """``user_get_user_details`` as ``core_user_get_users*`` return it; empty optional fields are left out."""
    out: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "fullname": f"{user.firstname} {user.lastname}",
        "email": user.email,
        "department": user.department,
    }
    if user.institution:
        out["institution"] = user.institution
    if user.idnumber:
        out["idnumber"] = user.idnumber
    out.update(
        firstaccess=0,
        lastaccess=0,
        auth=user.auth,
        suspended=user.suspended,
        confirmed=True,
        lang=user.lang,
        theme="",
        timezone=user.timezone,
        mailformat=1,
        trackforums=0,
    )
    _add_profile(ctx, user, out)
    if user.employeeid:
        out["customfields"] = [
            {
                "type": "text",
                "value": user.employeeid,
                "displayvalue": user.employeeid,
                "name": "Employee ID",
                "shortname": "employeeid",
            }
        ]
    if user.id == ctx.userid:
        last = str(ctx.site.now())
        out["preferences"] = [
            {"name": "last_time_enrolments_synced", "value": last},
            {"name": "_lastloaded", "value": int(last)},
        ]
    return out


def _visible_to(ctx: Context, enrolment: Enrolment) -> bool:
    course = ctx.site.courses[enrolment.courseid]
    return bool(course.visible) or enrolment.roleid in HIDDEN_COURSE_ROLES


def _active_courses(ctx: Context, userid: int) -> list[Course]:
    """``enrol_get_users_courses($userid, onlyactive=true)``: active, started enrolments in courses the
    user may see, in course sort order."""
    now = ctx.site.now()
    courses = [
        ctx.site.courses[e.courseid]
        for e in ctx.site.user_enrolments(userid)
        if e.active(now) and _visible_to(ctx, e)
    ]
    return sorted(courses, key=lambda c: c.sortorder)


def _courseimage(ctx: Context, course: Course) -> str:
    return f"{ctx.siteurl}/pluginfile.php/{course.contextid}/course/generated/course.svg"


def _format_options(course: Course) -> list[dict[str, Any]]:
    if course.is_site:
        return [{"name": "numsections", "value": 1}]
    return [{"name": "hiddensections", "value": 1}, {"name": "coursedisplay", "value": 0}]


def _render_course_short(ctx: Context, course: Course) -> dict[str, Any]:
    """A course as ``core_course_get_courses`` returns it."""
    out: dict[str, Any] = {
        "id": course.id,
        "shortname": course.shortname,
        "categoryid": course.categoryid,
        "categorysortorder": course.sortorder,
        "fullname": course.fullname,
        "displayname": course.fullname,
        "idnumber": course.idnumber,
        "summary": course.summary,
        "summaryformat": course.summaryformat,
        "format": course.format,
        "showgrades": course.showgrades,
        "newsitems": course.newsitems,
        "startdate": course.startdate,
        "enddate": course.enddate,
        "numsections": course.numsections if not course.is_site else 1,
        "maxbytes": 0,
        "showreports": 0,
        "visible": course.visible,
    }
    if not course.is_site:
        out["hiddensections"] = 1
    out.update(
        groupmode=0,
        groupmodeforce=0,
        defaultgroupingid=0,
        timecreated=course.timecreated,
        timemodified=course.timemodified,
        enablecompletion=course.enablecompletion,
        completionnotify=0,
        lang=course.lang,
        forcetheme="",
        courseformatoptions=_format_options(course),
        showactivitydates=True,
        showcompletionconditions=True if course.enablecompletion else None,
    )
    return out


_FILTERS: Final = ("displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink", "mediaplugin")


def _render_course_full(ctx: Context, course: Course) -> dict[str, Any]:
    """A course as ``core_course_get_courses_by_field`` returns it (contacts, enrolment methods, filters)."""
    category = ctx.site.categories.get(course.categoryid)
    contacts = [
        {"id": e.userid, "fullname": ctx.site.users[e.userid].fullname}
        for e in ctx.site.course_enrolments(course.id)
        if e.roleid == 3 and e.active(ctx.site.now())
    ]
    out: dict[str, Any] = {
        "id": course.id,
        "fullname": course.fullname,
        "displayname": course.fullname,
        "shortname": course.shortname,
        "courseimage": _courseimage(ctx, course),
        "categoryid": course.categoryid,
        "categoryname": category.name if category else "",
        "sortorder": course.sortorder,
        "summary": course.summary,
        "summaryformat": course.summaryformat,
        "summaryfiles": [],
        "overviewfiles": [],
        "showactivitydates": True,
        "showcompletionconditions": True if course.enablecompletion else None,
        "contacts": contacts,
        "enrollmentmethods": ["manual"] if course.manual_enrol else [],
        "idnumber": course.idnumber,
        "format": course.format,
        "showgrades": course.showgrades,
        "newsitems": course.newsitems,
        "startdate": course.startdate,
        "enddate": course.enddate,
        "maxbytes": 0,
        "showreports": 0,
        "visible": course.visible,
        "groupmode": 0,
        "groupmodeforce": 0,
        "defaultgroupingid": 0,
        "enablecompletion": course.enablecompletion,
        "completionnotify": 0,
        "lang": course.lang,
        "theme": "",
        "marker": 0,
        "legacyfiles": 0,
        "calendartype": "",
        "timecreated": course.timecreated,
        "timemodified": course.timemodified,
        "requested": 0,
        "cacherev": course.cacherev,
        "filters": [{"filter": f, "localstate": 0, "inheritedstate": 1} for f in _FILTERS],
    }
    if not course.is_site:
        out["courseformatoptions"] = [*_format_options(course), {"name": "indentation", "value": "1"}]
    return out


_PURPOSE: Final = {
    "forum": "collaboration",
    "glossary": "collaboration",
    "assign": "assessment",
    "quiz": "assessment",
    "h5pactivity": "interactivecontent",
    "scorm": "interactivecontent",
    "feedback": "communication",
    "bigbluebuttonbn": "communication",
}
_PLURAL: Final = {
    "forum": "Forums",
    "page": "Pages",
    "assign": "Assignments",
    "quiz": "Quizzes",
    "url": "URLs",
    "label": "Text and media areas",
    "resource": "Files",
    "h5pactivity": "H5P",
    "glossary": "Glossaries",
    "folder": "Folders",
    "feedback": "Feedback",
    "bigbluebuttonbn": "BigBlueButton",
    "scorm": "SCORM packages",
    "book": "Books",
}
_RULE: Final = {"view": ("completionview", "View"), "grade": ("completionusegrade", "Receive a grade")}


def _details(module: Module, state: int) -> list[dict[str, Any]]:
    rule = _RULE.get(module.rule)
    if rule is None:
        return []
    return [{"rulename": rule[0], "rulevalue": {"status": state, "description": rule[1]}}]


def _render_module(ctx: Context, module: Module) -> dict[str, Any]:
    """A module of ``core_course_get_contents``; its shape depends on the module type, as recorded."""
    base = ctx.siteurl
    out: dict[str, Any] = {"id": module.id}
    if module.modname != "label":
        out["url"] = f"{base}/mod/{module.modname}/view.php?id={module.id}"
    out.update(name=module.name, instance=module.instance, contextid=module.contextid)
    if module.modname == "label":
        out["description"] = f'<div class="no-overflow"><p>{html.escape(module.name)}</p></div>'
    out.update(
        visible=module.visible,
        uservisible=True,
        visibleoncoursepage=1,
        modicon=f"{base}/theme/image.php/boost/{module.modname}/{THEME_REV}/monologo?filtericon=1",
        modname=module.modname,
        purpose=_PURPOSE.get(module.modname, "content"),
        branded=False,
        modplural=_PLURAL.get(module.modname, module.modname.capitalize() + "s"),
        availability=None,
        indent=0,
        onclick="",
        afterlink=None,
    )
    if module.modname == "forum":
        out["activitybadge"] = []
    out["customdata"] = {
        "forum": json.dumps({"trackingtype": "1"}, separators=(",", ":")),
        "assign": json.dumps(
            {
                "customcompletionrules": {"completionsubmit": "0"},
                "duedate": 1790956800,
                "allowsubmissionsfromdate": "1788768000",
            },
            separators=(",", ":"),
        ),
        "quiz": json.dumps(
            {
                "customcompletionrules": {
                    "completionpassorattemptsexhausted": [],
                    "completionminattempts": "0",
                },
                "timeopen": "1789977600",
                "timeclose": "1792166400",
            },
            separators=(",", ":"),
        ),
        "url": json.dumps({"display": 4, "filtericon": True}, separators=(",", ":")),
    }.get(module.modname, '""')
    out.update(noviewlink=module.modname == "label", candisplay=True, completion=module.tracking)
    if module.tracking:
        own = ctx.site.completion(ctx.userid, module.id)
        out["completiondata"] = {
            "state": own.state,
            "timecompleted": own.timecompleted,
            "overrideby": own.overrideby,
            "valueused": False,
            "hascompletion": True,
            "isautomatic": module.tracking == 2,
            "istrackeduser": ctx.site.is_tracked(ctx.userid, module.course),
            "uservisible": True,
            "details": _details(module, own.state),
            "isoverallcomplete": own.state in (1, 2, 3),
        }
    out["downloadcontent"] = 1
    out["dates"] = {
        "assign": [
            {"label": "Opened:", "timestamp": 1788768000, "dataid": "allowsubmissionsfromdate"},
            {"label": "Due:", "timestamp": 1790956800, "dataid": "duedate"},
        ],
        "quiz": [
            {"label": "Opened:", "timestamp": 1789977600, "dataid": "timeopen"},
            {"label": "Closed:", "timestamp": 1792166400, "dataid": "timeclose"},
        ],
    }.get(module.modname, [])
    out["groupmode"] = 0
    if module.modname in ("page", "url"):
        if module.modname == "page":
            content = {
                "type": "file",
                "filename": "index.html",
                "filepath": "/",
                "filesize": 0,
                "fileurl": f"{base}/webservice/pluginfile.php/{module.contextid}"
                f"/mod_page/content/index.html?forcedownload=1",
                "timecreated": None,
                "timemodified": ctx.site.courses[module.course].timemodified,
                "sortorder": 1,
                "userid": None,
                "author": None,
                "license": None,
            }
        else:
            content = {
                "type": "url",
                "filename": module.name,
                "filepath": None,
                "filesize": 0,
                "fileurl": module.url,
                "timecreated": None,
                "timemodified": ctx.site.courses[module.course].timemodified,
                "sortorder": None,
                "userid": None,
                "author": None,
                "license": None,
            }
        out["contents"] = [content]
        out["contentsinfo"] = {
            "filescount": 1,
            "filessize": 0,
            "lastmodified": ctx.site.courses[module.course].timemodified,
            "mimetypes": [],
            "repositorytype": "",
        }
    return out


def _render_competency(comp: Competency) -> dict[str, Any]:
    return {
        "shortname": comp.shortname,
        "idnumber": comp.idnumber,
        "description": comp.description,
        "descriptionformat": 1,
        "sortorder": comp.sortorder,
        "parentid": comp.parentid,
        "path": comp.path,
        "ruleoutcome": 0,
        "ruletype": None,
        "ruleconfig": None,
        "scaleid": None,
        "scaleconfiguration": None,
        "competencyframeworkid": comp.frameworkid,
        "id": comp.id,
        "timecreated": comp.timecreated,
        "timemodified": comp.timecreated,
        "usermodified": 2,
    }


_SCALE_CONFIG: Final = (
    '[{"scaleid":"2"},{"id":1,"scaledefault":1,"proficient":0},{"id":2,"scaledefault":0,"proficient":1}]'
)
_SCALE: Final = {1: "Not yet competent", 2: "Competent"}


def _render_framework(ctx: Context, fw: Framework) -> dict[str, Any]:
    return {
        "shortname": fw.shortname,
        "idnumber": fw.idnumber,
        "description": fw.description,
        "descriptionformat": 1,
        "visible": fw.visible,
        "scaleid": fw.scaleid,
        "scaleconfiguration": _SCALE_CONFIG,
        "contextid": 1,
        "taxonomies": "",
        "id": fw.id,
        "timecreated": fw.timecreated,
        "timemodified": fw.timecreated,
        "usermodified": 2,
        "canmanage": True,
        "competenciescount": sum(1 for c in ctx.site.competencies.values() if c.frameworkid == fw.id),
        "contextname": "System",
        "contextnamenoprefix": "System",
    }


def _render_coursecompetency(cc: CourseCompetency) -> dict[str, Any]:
    return {
        "courseid": cc.courseid,
        "competencyid": cc.competencyid,
        "sortorder": cc.sortorder,
        "ruleoutcome": cc.ruleoutcome,
        "id": cc.id,
        "timecreated": cc.timecreated,
        "timemodified": cc.timecreated,
        "usermodified": 2,
    }


def _render_user_summary(ctx: Context, user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "idnumber": user.idnumber,
        "phone1": "",
        "phone2": "",
        "department": user.department,
        "institution": user.institution,
        "fullname": user.fullname,
        "identity": user.email,
        "profileurl": f"{ctx.siteurl}/user/profile.php?id={user.id}",
        "profileimageurl": _img(ctx, "f1"),
        "profileimageurlsmall": _img(ctx, "f2"),
    }


def _course_competencies(ctx: Context, courseid: int) -> list[CourseCompetency]:
    return sorted(
        (cc for cc in ctx.site.course_competencies.values() if cc.courseid == courseid),
        key=lambda cc: cc.sortorder,
    )


def _comppath(ctx: Context, comp: Competency) -> dict[str, Any]:
    fw = ctx.site.frameworks[comp.frameworkid]
    return {
        "ancestors": [],
        "framework": {"id": fw.id, "name": fw.shortname, "first": False, "last": False, "position": -1},
        "pluginbaseurl": f"{ctx.siteurl}/admin/tool/lp",
        "pagecontextid": 1,
        "showlinks": True,
    }


def _render_evidence(ctx: Context, ev: Evidence) -> dict[str, Any]:
    course = ctx.site.courses[ev.courseid]
    return {
        "usercompetencyid": ev.usercompetencyid,
        "contextid": course.contextid,
        "action": 3,
        "actionuserid": ev.actionuserid,
        "descidentifier": "evidence_manualoverrideincourse",
        "desccomponent": "core_competency",
        "desca": json.dumps(f"Course: {course.fullname}"),
        "url": None,
        "grade": ev.grade,
        "note": ev.note,
        "id": ev.id,
        "timecreated": ev.timecreated,
        "timemodified": ev.timecreated,
        "usermodified": ev.actionuserid,
        "actionuser": _render_user_summary(ctx, ctx.site.users[ev.actionuserid]),
        "description": f"The competency rating was manually set in the course 'Course: {course.fullname}'.",
        "gradename": _SCALE.get(ev.grade or 0, "-"),
        "userdate": "Monday, 23 November 2026, 11:00 AM",
        "candelete": True,
    }


# -- core_webservice -----------------------------------------------------------------------------------------


@_function("core_webservice_get_site_info", serviceshortnames=Multiple(item=Text(), default=[]))
def site_info(ctx: Context, params: dict[str, Any]) -> Any:
    user = ctx.site.users[ctx.userid]
    features = (
        ("usecomments", 1),
        ("usetags", 1),
        ("enablenotes", 1),
        ("messaging", 1),
        ("enableblogs", 1),
        ("enablecompletion", 1),
        ("enablebadges", 1),
        ("messagingallusers", 0),
        ("enablecustomreports", 1),
        ("enableglobalsearch", 0),
        ("mnet_dispatcher_mode", 0),
        ("enablecompetencies", 1),
    )
    return {
        "sitename": ctx.site.sitename,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "fullname": user.fullname,
        "lang": "en",
        "userid": user.id,
        "siteurl": ctx.siteurl,
        "userpictureurl": _img(ctx, "f1"),
        "functions": [{"name": f, "version": FUNCTIONS[f].version} for f in ctx.functions if f in FUNCTIONS],
        "downloadfiles": 1,
        "uploadfiles": 0,
        "release": RELEASE,
        "version": CORE_VERSION,
        "mobilecssurl": "",
        "advancedfeatures": [{"name": n, "value": v} for n, v in features],
        "usercanmanageownfiles": True,
        "userquota": 0,
        "usermaxuploadfilesize": -1,
        "userhomepage": 1,
        "userprivateaccesskey": hashlib.md5(f"private-{user.id}".encode()).hexdigest(),
        "siteid": 1,
        "sitecalendartype": "gregorian",
        "usercalendartype": "gregorian",
        "userissiteadmin": user.id == 2,
        "theme": "boost",
        "limitconcurrentlogins": 0,
        "policyagreed": 0,
    }


# -- core_user ---------------------------------------------------------------------------------------------

_USER_KEYS: Final = ("id", "lastname", "firstname", "idnumber", "username", "email", "auth")


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


def _user_test(key: str, value: str) -> Callable[[User], bool]:
    if key in ("email", "firstname", "lastname"):
        return lambda u: _like(value, str(getattr(u, key)))
    return lambda u: str(getattr(u, key)) == value


@_function("core_user_get_users", criteria=Multiple(item=Single(keys={"key": Text(), "value": Text()})))
def get_users(ctx: Context, params: dict[str, Any]) -> Any:
    warnings: list[dict[str, Any]] = []
    tests: list[Callable[[User], bool]] = []
    for criterion in params["criteria"]:
        key, value = criterion["key"], criterion["value"]
        if key not in _USER_KEYS:
            warnings.append(
                {
                    "item": key,
                    "warningcode": "invalidfieldparameter",
                    "message": f"The search key '{key}' is not supported, "
                    "look at the web service documentation",
                }
            )
            continue
        tests.append(_user_test(key, value))
    users = [
        _render_user(ctx, u)
        for u in sorted(ctx.site.users.values(), key=lambda u: u.id)
        if not u.deleted and all(t(u) for t in tests)
    ]
    return {"users": users, "warnings": warnings}


@_function("core_user_get_users_by_field", field=Text(), values=Multiple(item=Text()))
def get_users_by_field(ctx: Context, params: dict[str, Any]) -> Any:
    field = params["field"]
    if field not in ("id", "idnumber", "username", "email"):
        raise WSError(
            "core\\exception\\coding_exception",
            "codingerror",
            "Coding error detected, it must be fixed by a programmer: invalid field parameter",
        )
    wanted = set(params["values"])
    return [
        _render_user(ctx, u)
        for u in sorted(ctx.site.users.values(), key=lambda u: u.id)
        if str(getattr(u, field)) in wanted and (field == "id" or not u.deleted)
    ]


@_function(
    "core_user_create_users",
    users=Multiple(
        item=Single(
            keys={
                "username": Text(),
                "password": Text(OPTIONAL),
                "createpassword": Int(OPTIONAL),
                "firstname": Text(),
                "lastname": Text(),
                "email": Text(),
                "auth": Text("manual"),
                "idnumber": Text(""),
                "department": Text(OPTIONAL),
                "institution": Text(OPTIONAL),
                "city": Text(OPTIONAL),
                "country": Text(OPTIONAL),
                "description": Text(OPTIONAL),
                "lang": Text("en"),
                "suspended": Int(OPTIONAL),
            }
        )
    ),
)
def create_users(ctx: Context, params: dict[str, Any]) -> Any:
    taken = {u.username for u in ctx.site.users.values()}
    for item in params["users"]:
        if item["username"] in taken:
            raise invalid_parameter(f"Username already exists: {item['username']}")
    created = []
    for item in params["users"]:
        uid = ctx.site.new_id("user")
        ctx.site.users[uid] = User(
            id=uid,
            username=item["username"],
            firstname=item["firstname"],
            lastname=item["lastname"],
            email=item["email"],
            idnumber=item["idnumber"],
            department=item.get("department", ""),
            institution=item.get("institution", ""),
            city=item.get("city", ""),
            country=item.get("country", ""),
            description=item.get("description", ""),
            suspended=bool(item.get("suspended", 0)),
            timecreated=ctx.site.now(),
        )
        created.append({"id": uid, "username": item["username"]})
    return created


# -- core_course -------------------------------------------------------------------------------------------


@_function(
    "core_course_get_courses", options=Single(keys={"ids": Multiple(OPTIONAL, item=Int())}, default={})
)
def get_courses(ctx: Context, params: dict[str, Any]) -> Any:
    ids = params["options"].get("ids")
    # Moodle reads the course table without ORDER BY: a deterministic order that is not by id, so a
    # client depending on an order the API does not promise fails here as it would on a real site.
    courses = sorted(ctx.site.iter_courses(), key=_unsorted)
    return [_render_course_short(ctx, c) for c in courses if ids is None or c.id in ids]


def _midnight(when: int) -> int:
    """``usergetmidnight``: the start of the day in the site's time zone (Europe/London)."""
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo("Europe/London")
    except zoneinfo.ZoneInfoNotFoundError:  # no time zone data on this machine: close enough
        zone = dt.timezone.utc
    day = dt.datetime.fromtimestamp(when, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return int(day.timestamp())


def _unsorted(course: Course) -> int:
    return (course.id * 2654435761 + 0x5BD1E995) % 2**32


@_function("core_course_get_courses_by_field", field=Text(""), value=Text(""))
def get_courses_by_field(ctx: Context, params: dict[str, Any]) -> Any:
    field, value = params["field"], params["value"]
    courses = list(ctx.site.iter_courses())
    if field == "":
        selected = courses
    elif field == "id":
        selected = [c for c in courses if str(c.id) == value]
    elif field == "ids":
        ids = {v.strip() for v in value.split(",")}
        selected = [c for c in courses if str(c.id) in ids]
    elif field in ("shortname", "idnumber"):
        selected = [c for c in courses if getattr(c, field) == value]
    elif field == "category":
        selected = [c for c in courses if str(c.categoryid) == value]
    elif field == "sectionid":
        selected = [c for c in courses if any(str(s.id) == value for s in c.sections)]
    else:
        raise invalid_parameter("Invalid field name")
    return {"courses": [_render_course_full(ctx, c) for c in selected], "warnings": []}


@_function(
    "core_course_get_categories",
    criteria=Multiple(item=Single(keys={"key": Text(), "value": Text()}), default=[]),
    addsubcategories=Bool(True),
)
def get_categories(ctx: Context, params: dict[str, Any]) -> Any:
    cats = sorted(ctx.site.categories.values(), key=lambda c: c.sortorder)
    for criterion in params["criteria"]:
        key, value = criterion["key"], criterion["value"]
        if key not in ("id", "ids", "name", "parent", "idnumber", "visible", "theme"):
            raise invalid_parameter(f"The key {key} is not allowed")
        if key == "ids":
            wanted = set(value.split(","))
            cats = [c for c in cats if str(c.id) in wanted]
        else:
            cats = [c for c in cats if str(getattr(c, key)) == value]
    counts: dict[int, int] = {}
    for course in ctx.site.courses.values():
        counts[course.categoryid] = counts.get(course.categoryid, 0) + 1

    def ancestry(category: Category) -> list[int]:
        chain = [category.id]
        while (top := ctx.site.categories.get(chain[0])) is not None and top.parent not in (0, *chain):
            chain.insert(0, top.parent)
        return chain

    return [
        {
            "id": c.id,
            "name": c.name,
            "idnumber": c.idnumber,
            "description": c.description,
            "descriptionformat": 1,
            "parent": c.parent,
            "sortorder": c.sortorder,
            "coursecount": counts.get(c.id, 0),
            "visible": c.visible,
            "visibleold": c.visible,
            "timemodified": c.timemodified,
            "depth": len(ancestry(c)),
            "path": "".join(f"/{i}" for i in ancestry(c)),
            "theme": "",
        }
        for c in cats
    ]


@_function(
    "core_course_get_contents",
    courseid=Int(),
    options=Multiple(item=Single(keys={"name": Text(), "value": Text()}), default=[]),
)
def get_contents(ctx: Context, params: dict[str, Any]) -> Any:
    course = _course_or_missing(ctx, params["courseid"])
    modules = ctx.site.course_modules(course.id)
    sections = []
    for section in course.sections:
        sections.append(
            {
                "id": section.id,
                "name": section.name,
                "visible": section.visible,
                "summary": "",
                "summaryformat": 1,
                "section": section.section,
                "hiddenbynumsections": 0,
                "uservisible": True,
                "component": section.component,
                "itemid": section.itemid,
                "modules": [_render_module(ctx, m) for m in modules if m.section == section.section],
            }
        )
    return sections


_COURSE_FIELDS: Final = {
    "fullname": Text(OPTIONAL),
    "shortname": Text(OPTIONAL),
    "categoryid": Int(OPTIONAL),
    "idnumber": Text(OPTIONAL),
    "summary": Text(OPTIONAL),
    "summaryformat": Int(OPTIONAL),
    "format": Text(OPTIONAL),
    "showgrades": Int(OPTIONAL),
    "newsitems": Int(OPTIONAL),
    "startdate": Int(OPTIONAL),
    "enddate": Int(OPTIONAL),
    "numsections": Int(OPTIONAL),
    "maxbytes": Int(OPTIONAL),
    "showreports": Int(OPTIONAL),
    "visible": Int(OPTIONAL),
    "hiddensections": Int(OPTIONAL),
    "groupmode": Int(OPTIONAL),
    "groupmodeforce": Int(OPTIONAL),
    "defaultgroupingid": Int(OPTIONAL),
    "enablecompletion": Int(OPTIONAL),
    "completionnotify": Int(OPTIONAL),
    "lang": Text(OPTIONAL),
    "forcetheme": Text(OPTIONAL),
    "courseformatoptions": Multiple(OPTIONAL, item=Single(keys={"name": Text(), "value": Text()})),
    "customfields": Multiple(OPTIONAL, item=Single(keys={"shortname": Text(), "value": Text()})),
}


def _check_lang(ctx: Context, item: dict[str, Any]) -> None:
    lang = item.get("lang")
    if lang and lang not in ctx.site.languages:
        raise moodle_exception("errorinvalidparam", 'The param "lang" is invalid.', lang)


@_function(
    "core_course_create_courses",
    courses=Multiple(
        item=Single(
            keys={
                **_COURSE_FIELDS,
                "fullname": Text(),
                "shortname": Text(),
                "categoryid": Int(),
                "summaryformat": Int(1),
                "format": Text("topics"),
                "showgrades": Int(1),
                "newsitems": Int(5),
                "maxbytes": Int(0),
                "showreports": Int(0),
                "groupmode": Int(0),
                "groupmodeforce": Int(0),
                "defaultgroupingid": Int(0),
            }
        )
    ),
)
def create_courses(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    shortnames = {c.shortname for c in site.courses.values()}
    idnumbers = {c.idnumber for c in site.courses.values() if c.idnumber}
    # Moodle wraps the batch in a transaction: any failure rolls the whole call back.
    for item in params["courses"]:
        if item["categoryid"] not in site.categories:
            raise moodle_exception(
                "errorcatcontextnotvalid",
                f"You cannot execute functions in the category context (category id:{item['categoryid']}). "
                "The context error message was: Invalid parameter value detected",
            )
        if item["shortname"] in shortnames:
            raise moodle_exception(
                "shortnametaken", f"Short name is already used for another course ({item['shortname']})"
            )
        if item.get("idnumber") and item["idnumber"] in idnumbers:
            raise moodle_exception(
                "courseidnumbertaken", f"ID number is already used for another course ({item['idnumber']})"
            )
        _check_lang(ctx, item)
        shortnames.add(item["shortname"])
        if item.get("idnumber"):
            idnumbers.add(item["idnumber"])
    created = []
    for item in params["courses"]:
        now = site.now()
        cid = site.new_id("course")
        numsections = int(
            next(
                (o["value"] for o in item.get("courseformatoptions", []) if o["name"] == "numsections"),
                item.get("numsections", 0),
            )
        )
        category = site.categories[item["categoryid"]]
        # A new course goes first in its category; the others move down one.
        for other in site.courses.values():
            if other.categoryid == category.id:
                other.sortorder += 1
        startdate = item.get("startdate", _midnight(now))
        course = Course(
            id=cid,
            shortname=item["shortname"],
            fullname=item["fullname"],
            categoryid=item["categoryid"],
            idnumber=item.get("idnumber", ""),
            summary=item.get("summary", ""),
            summaryformat=item["summaryformat"],
            format=item["format"],
            visible=item.get("visible", 1),
            startdate=startdate,
            # The site's defaults: end date enabled, course duration one year.
            enddate=item.get("enddate", startdate + 365 * 86400),
            numsections=numsections,
            enablecompletion=item.get("enablecompletion", 0),
            lang=item.get("lang", ""),
            timecreated=now,
            timemodified=now,
            cacherev=now,
            newsitems=item["newsitems"],
            showgrades=item["showgrades"],
            sortorder=category.sortorder + 1,
            contextid=site.new_id("context"),
            coursegradeitem=site.new_id("grade_items"),
            gradecategory=site.new_id("grade_categories"),
        )
        course.sections = [
            Section(id=site.new_id("course_sections"), section=i, name="General" if i == 0 else f"Topic {i}")
            for i in range(numsections + 1)
        ]
        site.courses[cid] = course
        if course.newsitems:
            add_module(site, course, 0, "forum", "Announcements")
        created.append({"id": cid, "shortname": course.shortname})
    return created


@_function(
    "core_course_update_courses",
    courses=Multiple(item=Single(keys={"id": Int(), **_COURSE_FIELDS})),
)
def update_courses(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    warnings: list[dict[str, Any]] = []
    for item in params["courses"]:
        course = site.courses.get(item["id"])

        def warn(code: str, message: str, cid: int = item["id"]) -> None:
            warnings.append({"item": "course", "itemid": cid, "warningcode": code, "message": message})

        if course is None:
            warn("invalidrecordunknown", "Can't find data record in database.")
            continue
        if "shortname" in item and any(
            c.shortname == item["shortname"] and c.id != course.id for c in site.courses.values()
        ):
            warn("shortnametaken", f"Short name is already used for another course ({item['shortname']})")
            continue
        if item.get("idnumber") and any(
            c.idnumber == item["idnumber"] and c.id != course.id for c in site.courses.values()
        ):
            warn("courseidnumbertaken", f"ID number is already used for another course ({item['idnumber']})")
            continue
        if "categoryid" in item and item["categoryid"] not in site.categories:
            warn(
                "errorcatcontextnotvalid",
                f"You cannot execute functions in the category context (category id:{item['categoryid']}).",
            )
            continue
        if item.get("lang") and item["lang"] not in site.languages:
            warn("errorinvalidparam", 'The param "lang" is invalid.')
            continue
        for key in (
            "fullname",
            "shortname",
            "categoryid",
            "idnumber",
            "summary",
            "summaryformat",
            "format",
            "showgrades",
            "newsitems",
            "startdate",
            "enddate",
            "visible",
            "enablecompletion",
            "lang",
        ):
            if key in item:
                setattr(course, key, item[key])
        course.timemodified = site.now()
    return {"warnings": warnings}


@_function("core_course_delete_courses", courseids=Multiple(item=Int()))
def delete_courses(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    warnings = []
    for cid in params["courseids"]:
        course = site.courses.get(cid)
        if course is None:
            warnings.append(
                {
                    "item": "course",
                    "itemid": cid,
                    "warningcode": "unknowncourseidnumber",
                    "message": f"Unknown course ID {cid}",
                }
            )
            continue
        if course.is_site:
            warnings.append(
                {
                    "item": "course",
                    "itemid": cid,
                    "warningcode": "cannotdeletecategorycourse",
                    "message": f"Course {cid} failed to be deleted",
                }
            )
            continue
        del site.courses[cid]
        for cmid in [m.id for m in site.modules.values() if m.course == cid]:
            del site.modules[cmid]
        for key in [k for k in site.enrolments if k[1] == cid]:
            del site.enrolments[key]
        for key in [k for k in site.course_completions if k[1] == cid]:
            del site.course_completions[key]
        for ccid in [k for k, v in site.course_competencies.items() if v.courseid == cid]:
            del site.course_competencies[ccid]
    return {"warnings": warnings}


# -- enrolment ---------------------------------------------------------------------------------------------

_ENROLLED_FIELDS: Final = (
    "id",
    "username",
    "firstname",
    "lastname",
    "fullname",
    "email",
    "department",
    "institution",
    "idnumber",
    "firstaccess",
    "lastaccess",
    "lastcourseaccess",
    "description",
    "descriptionformat",
    "city",
    "country",
    "profileimageurlsmall",
    "profileimageurl",
    "customfields",
    "roles",
    "enrolledcourses",
)


def _render_enrolled_user(ctx: Context, user: User, enrolment: Enrolment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "firstname": user.firstname,
        "lastname": user.lastname,
        "fullname": user.fullname,
        "email": user.email,
        "department": user.department,
    }
    if user.institution:
        out["institution"] = user.institution
    if user.idnumber:
        out["idnumber"] = user.idnumber
    out.update(firstaccess=0, lastaccess=0, lastcourseaccess=0)
    _add_profile(ctx, user, out)
    if user.employeeid:
        out["customfields"] = [
            {"type": "text", "value": user.employeeid, "name": "Employee ID", "shortname": "employeeid"}
        ]
    out["roles"] = [
        {"roleid": enrolment.roleid, "name": "", "shortname": ROLES[enrolment.roleid], "sortorder": 0}
    ]
    courses = [c for c in _active_courses(ctx, user.id) if not c.is_site]
    if courses:
        out["enrolledcourses"] = [
            {"id": c.id, "fullname": c.fullname, "shortname": c.shortname} for c in courses
        ]
    return out


@_function(
    "core_enrol_get_enrolled_users",
    courseid=Int(),
    options=Multiple(item=Single(keys={"name": Text(), "value": Text()}), default=[]),
)
def get_enrolled_users(ctx: Context, params: dict[str, Any]) -> Any:
    course = _course_or_missing(ctx, params["courseid"])
    options = {o["name"]: o["value"] for o in params["options"]}
    for name in options:
        if name not in (
            "withcapability",
            "groupid",
            "onlyactive",
            "onlysuspended",
            "userfields",
            "limitfrom",
            "limitnumber",
            "sortby",
            "sortdirection",
        ):
            raise invalid_parameter(f"Invalid option name {name}")
    now = ctx.site.now()
    enrolments = ctx.site.course_enrolments(course.id)
    if options.get("onlyactive") in ("1", "true"):
        enrolments = [e for e in enrolments if e.active(now)]
    if options.get("onlysuspended") in ("1", "true"):
        enrolments = [e for e in enrolments if not e.active(now)]
    sortby = options.get("sortby", "id")
    if sortby in ("firstname", "lastname"):
        enrolments.sort(key=lambda e: getattr(ctx.site.users[e.userid], sortby).lower())
    if options.get("sortdirection", "ASC").upper() == "DESC":
        enrolments.reverse()
    start = int(options.get("limitfrom", "0") or 0)
    count = int(options.get("limitnumber", "0") or 0)
    enrolments = enrolments[start : start + count] if count else enrolments[start:]
    fields = None
    if options.get("userfields"):
        # Moodle always keeps id and fullname, whatever userfields asks for.
        fields = {"id", "fullname", *(f.strip() for f in options["userfields"].split(","))}
    result = []
    for e in enrolments:
        user = ctx.site.users[e.userid]
        rendered = _render_enrolled_user(ctx, user, e)
        if fields is not None:
            rendered = {k: v for k, v in rendered.items() if k in fields}
        result.append(rendered)
    return result


@_function("core_enrol_get_users_courses", userid=Int(), returnusercount=Bool(True))
def get_users_courses(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    user = site.users.get(params["userid"])
    if user is None or user.deleted:
        return []
    result = []
    for course in _active_courses(ctx, user.id):
        tracked = site.is_tracked(user.id, course.id)
        out: dict[str, Any] = {
            "id": course.id,
            "shortname": course.shortname,
            "fullname": course.fullname,
            "displayname": course.fullname,
        }
        if params["returnusercount"]:
            out["enrolledusercount"] = len(site.course_enrolments(course.id))
        completed = False
        if course.enablecompletion and course.criteria:
            completed = site.course_completion(user.id, course.id).timecompleted is not None
        out.update(
            idnumber=course.idnumber,
            visible=course.visible,
            summary=course.summary,
            summaryformat=course.summaryformat,
            format=course.format,
            courseimage=_courseimage(ctx, course),
            showgrades=bool(course.showgrades),
            lang=course.lang,
            enablecompletion=bool(course.enablecompletion),
            completionhascriteria=bool(course.criteria),
            completionusertracked=tracked,
            category=course.categoryid,
            progress=site.progress(user.id, course.id) if tracked and course.enablecompletion else None,
            completed=completed,
            startdate=course.startdate,
            enddate=course.enddate,
            marker=0,
            lastaccess=site.enrolments[(user.id, course.id)].lastaccess,
            isfavourite=False,
            hidden=False,
            overviewfiles=[],
            showactivitydates=True,
            showcompletionconditions=True if course.enablecompletion else None,
            timemodified=course.timemodified,
        )
        result.append(out)
    return result


@_function(
    "enrol_manual_enrol_users",
    enrolments=Multiple(
        item=Single(
            keys={
                "roleid": Int(),
                "userid": Int(),
                "courseid": Int(),
                "timestart": Int(OPTIONAL),
                "timeend": Int(OPTIONAL),
                "suspend": Int(OPTIONAL),
            }
        )
    ),
)
def enrol_users(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    # Validate everything first: Moodle runs the batch in a transaction and rolls back on any exception.
    for item in params["enrolments"]:
        course = site.courses.get(item["courseid"])
        if course is None:
            raise WSError(
                "core\\exception\\invalid_parameter_exception",
                "invalidparameter",
                "Invalid parameter value detected",
                debuginfo="Context does not exist",
            )
        if item["roleid"] not in ASSIGNABLE_ROLES:
            raise moodle_exception(
                "wsusercannotassign",
                f"You don't have the permission to assign this role ({item['roleid']}) to this user "
                f"({item['userid']}) in this course ({item['courseid']}).",
            )
        if not course.manual_enrol:
            raise moodle_exception(
                "wsnoinstance",
                "Manual enrolment plugin instance doesn't exist or is disabled "
                f"for the course (id = {course.id})",
            )
        _user_or_missing(ctx, item["userid"])
    for item in params["enrolments"]:
        key = (item["userid"], item["courseid"])
        existing = site.enrolments.get(key)
        if existing is None:
            site.enrolments[key] = Enrolment(
                userid=item["userid"],
                courseid=item["courseid"],
                roleid=item["roleid"],
                status=1 if item.get("suspend") else 0,
                timestart=item.get("timestart", 0),
                timeend=item.get("timeend", 0),
                timecreated=site.now(),
            )
        else:
            if "timestart" in item:
                existing.timestart = item["timestart"]
            if "timeend" in item:
                existing.timeend = item["timeend"]
            if "suspend" in item:
                existing.status = 1 if item["suspend"] else 0
    return None


@_function(
    "enrol_manual_unenrol_users", enrolments=Multiple(item=Single(keys={"userid": Int(), "courseid": Int()}))
)
def unenrol_users(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    for item in params["enrolments"]:
        _course_or_missing(ctx, item["courseid"])
        _user_or_missing(ctx, item["userid"])
    for item in params["enrolments"]:
        site.enrolments.pop((item["userid"], item["courseid"]), None)
    return None


# -- completion --------------------------------------------------------------------------------------------

_REQUIREMENT: Final = {"grade": "Achieving grade", "manual": "Marking yourself complete"}


@_function("core_completion_get_course_completion_status", courseid=Int(), userid=Int())
def course_completion_status(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    course = _course_or_missing(ctx, params["courseid"])
    user = _user_or_missing(ctx, params["userid"])
    if not course.enablecompletion:
        raise moodle_exception("cannotviewreport", "You cannot view this report")
    if not site.is_tracked(user.id, course.id):
        raise moodle_exception("usernotenroled", "User is not enrolled in this course")
    if not course.criteria:
        raise moodle_exception("nocriteriaset", "No completion criteria set for this course")
    cc = site.course_completion(user.id, course.id)
    completions = []
    for cmid in course.criteria:
        module = site.modules[cmid]
        marked = cc.marked.get(cmid)
        completions.append(
            {
                "type": 4,
                "title": "Activity completion",
                "status": "Yes" if marked else "No",
                "complete": marked is not None,
                "timecompleted": marked,
                "details": {
                    "type": "Activity completion",
                    "criteria": _link(ctx, module),
                    "requirement": _REQUIREMENT.get(module.rule, f"Viewing the {module.modname}"),
                    "status": "",
                },
            }
        )
    return {
        "completionstatus": {
            "completed": cc.timecompleted is not None,
            "aggregation": 1,
            "completions": completions,
        },
        "warnings": [],
    }


def _render_status(ctx: Context, userid: int, module: Module) -> dict[str, Any]:
    c = ctx.site.completion(userid, module.id)
    return {
        "cmid": module.id,
        "modname": module.modname,
        "instance": module.instance,
        "state": c.state,
        "timecompleted": c.timecompleted,
        "tracking": module.tracking,
        "overrideby": c.overrideby,
        "valueused": False,
        "hascompletion": True,
        "isautomatic": module.tracking == 2,
        "istrackeduser": ctx.site.is_tracked(userid, module.course),
        "uservisible": True,
        "details": _details(module, c.state),
        "isoverallcomplete": c.state in (1, 2, 3),
    }


@_function("core_completion_get_activities_completion_status", courseid=Int(), userid=Int())
def activities_completion_status(ctx: Context, params: dict[str, Any]) -> Any:
    course = _course_or_missing(ctx, params["courseid"])
    user = _user_or_missing(ctx, params["userid"])
    statuses = []
    if course.enablecompletion:
        statuses = [_render_status(ctx, user.id, m) for m in ctx.site.tracked_modules(course.id)]
    return {"statuses": statuses, "warnings": []}


@_function("core_completion_override_activity_completion_status", userid=Int(), cmid=Int(), newstate=Int())
def override_completion(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    module = site.modules.get(params["cmid"])
    if module is None:
        raise missing_record("course_modules", "id = ?", [params["cmid"]])
    user = _user_or_missing(ctx, params["userid"])
    if params["newstate"] not in (0, 1):
        raise invalid_parameter(f"Invalid value for newstate: {params['newstate']}")
    c = site.set_activity_state(user.id, module, params["newstate"], overrideby=ctx.userid, via_override=True)
    return {
        "cmid": module.id,
        "userid": user.id,
        "state": c.state,
        "timecompleted": c.timecompleted,
        "overrideby": c.overrideby,
        "tracking": module.tracking,
    }


@_function("core_completion_update_activity_completion_status_manually", cmid=Int(), completed=Bool())
def update_completion_manually(ctx: Context, params: dict[str, Any]) -> Any:
    module = ctx.site.modules.get(params["cmid"])
    if module is None:
        raise missing_record("course_modules", "id = ?", [params["cmid"]])
    if module.tracking != 1:
        raise moodle_exception("cannotmanualctrack", "Activity does not provide manual completion tracking")
    ctx.site.set_activity_state(
        ctx.userid, module, 1 if params["completed"] else 0, overrideby=None, via_override=True
    )
    return {"status": True, "warnings": []}


# -- grades ------------------------------------------------------------------------------------------------


@_function(
    "core_grades_update_grades",
    source=Text(),
    courseid=Int(),
    component=Text(),
    activityid=Int(),
    itemnumber=Int(),
    grades=Multiple(
        OPTIONAL, item=Single(keys={"studentid": Int(), "grade": Float(), "str_feedback": Text(OPTIONAL)})
    ),
    itemdetails=Single(
        OPTIONAL,
        keys={
            "itemname": Text(OPTIONAL),
            "idnumber": Text(OPTIONAL),
            "gradetype": Int(OPTIONAL),
            "grademax": Float(OPTIONAL),
            "grademin": Float(OPTIONAL),
            "scaleid": Int(OPTIONAL),
            "multfactor": Float(OPTIONAL),
            "plusfactor": Float(OPTIONAL),
            "deleted": Bool(OPTIONAL),
            "hidden": Bool(OPTIONAL),
        },
    ),
)
def update_grades(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    module = site.modules.get(params["activityid"])
    if (
        module is None
        or module.course != params["courseid"]
        or params["component"] != f"mod_{module.modname}"
    ):
        raise moodle_exception("invalidcoursemodule", "Invalid course module ID")
    if module.grademax is None or params["itemnumber"] != 0:
        return 1  # GRADE_UPDATE_FAILED: there is no such grade item
    for grade in params.get("grades", []):
        _user_or_missing(ctx, grade["studentid"])
    for grade in params.get("grades", []):
        value = max(0.0, min(float(grade["grade"]), module.grademax))
        site.set_grade(grade["studentid"], module, value, grade.get("str_feedback", ""))
    return 0


@_function(
    "mod_assign_save_grade",
    assignmentid=Int(),
    userid=Int(),
    grade=Float(),
    attemptnumber=Int(),
    addattempt=Bool(),
    workflowstate=Text(),
    applytoall=Bool(True),
    plugindata=Single(
        OPTIONAL,
        keys={
            "assignfeedbackcomments_editor": Single(OPTIONAL, keys={"text": Text(), "format": Int()}),
            "files_filemanager": Int(OPTIONAL),
        },
    ),
    advancedgradingdata=Single(OPTIONAL, keys={}),
)
def assign_save_grade(ctx: Context, params: dict[str, Any]) -> Any:
    module = next(
        (
            m
            for m in ctx.site.modules.values()
            if m.modname == "assign" and m.instance == params["assignmentid"]
        ),
        None,
    )
    if module is None:
        raise missing_record("assign", "id = ?", [params["assignmentid"]])
    _user_or_missing(ctx, params["userid"])
    assert module.grademax is not None
    ctx.site.set_grade(params["userid"], module, max(0.0, min(float(params["grade"]), module.grademax)))
    return None


def _fmt(value: float) -> str:
    return f"{value:.2f}"


_PASS: Final = (
    '<i class="icon fa fa-check text-success fa-fw inline"  title="Pass" role="img" aria-label="Pass"></i>'
)
_FAIL: Final = (
    '<i class="icon fa fa-xmark text-danger fa-fw inline"  title="Fail" role="img" aria-label="Fail"></i>'
)


def _user_grades(ctx: Context, course: Course, user: User) -> dict[str, Any]:
    site = ctx.site
    if not course.coursegradeitem:
        # A course nobody graded yet gets its course total and top category when the gradebook is read.
        course.coursegradeitem = site.new_id("grade_items")
        course.gradecategory = site.new_id("grade_categories")
    graded = site.graded_modules(course.id)
    grades = {m.id: site.grades.get((user.id, m.id)) for m in graded}
    has_any = any(g is not None and g.raw is not None for g in grades.values())
    present = [m for m in graded if grades[m.id] is not None and grades[m.id].raw is not None]  # type: ignore[union-attr]
    total_max = sum(m.grademax or 0 for m in (present or graded))
    items = []
    for m in graded:
        g = grades[m.id]
        raw = g.raw if g is not None else None
        item: dict[str, Any] = {
            "id": m.gradeitemid,
            "itemname": m.name,
            "itemtype": "mod",
            "itemmodule": m.modname,
            "iteminstance": m.instance,
            "itemnumber": 0,
            "idnumber": "",
            "categoryid": course.gradecategory,
            "outcomeid": None,
            "scaleid": None,
            "locked": False,
            "cmid": m.id,
        }
        if has_any:
            weight = round((m.grademax or 0) / total_max, 5) if raw is not None and total_max else 0
            item["weightraw"] = int(weight) if float(weight).is_integer() else weight
            item["weightformatted"] = f"{weight * 100:.2f} %"
            if raw is None:
                item["status"] = "novalue"
        if raw is None:
            formatted = "-"
        else:
            formatted = _fmt(raw)
            if m.gradepass > 0:
                formatted = (_PASS if raw >= m.gradepass else _FAIL) + formatted
        item.update(
            graderaw=_num(raw),
            gradedatesubmitted=None,
            gradedategraded=g.dategraded if g else None,
            gradehiddenbydate=False,
            gradeneedsupdate=False,
            gradeishidden=False,
            gradeislocked=False,
            gradeisoverridden=False,
            gradeformatted=formatted,
            grademin=0,
            grademax=_num(m.grademax),
            rangeformatted=f"0&ndash;{_num(m.grademax)}",
            percentageformatted="-" if raw is None else f"{raw * 100 / (m.grademax or 1):.2f} %",
            feedback=g.feedback if g else "",
            feedbackformat=2 if has_any else 0,
        )
        items.append(item)
    course_raw = (
        sum(g.raw for g in grades.values() if g is not None and g.raw is not None) if has_any else None
    )
    dates = [g.dategraded for g in grades.values() if g is not None and g.dategraded]
    items.append(
        {
            "id": course.coursegradeitem,
            "itemname": None,
            "itemtype": "course",
            "itemmodule": None,
            "iteminstance": course.gradecategory,
            "itemnumber": None,
            "idnumber": None,
            "categoryid": None,
            "outcomeid": None,
            "scaleid": None,
            "locked": False,
            "graderaw": _num(course_raw),
            "gradedatesubmitted": None,
            "gradedategraded": max(dates) if dates else None,
            "gradehiddenbydate": False,
            "gradeneedsupdate": False,
            "gradeishidden": False,
            "gradeislocked": False,
            "gradeisoverridden": False,
            "gradeformatted": "-" if course_raw is None else _fmt(course_raw),
            "grademin": 0,
            "grademax": _num(total_max),
            "rangeformatted": f"0&ndash;{_num(total_max)}",
            "percentageformatted": "-"
            if course_raw is None or not total_max
            else f"{course_raw * 100 / total_max:.2f} %",
            "feedback": "",
            "feedbackformat": 2 if has_any else 0,
        }
    )
    return {
        "courseid": course.id,
        "courseidnumber": course.idnumber,
        "userid": user.id,
        "userfullname": user.fullname,
        "useridnumber": user.idnumber,
        "maxdepth": 2,
        "gradeitems": items,
    }


def _num(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 5)


@_function("gradereport_user_get_grade_items", courseid=Int(), userid=Int(0), groupid=Int(0))
def grade_items(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    course = _course_or_missing(ctx, params["courseid"])
    if params["userid"]:
        users = [_user_or_missing(ctx, params["userid"])]
    else:
        now = site.now()
        users = [
            site.users[e.userid] for e in site.course_enrolments(course.id) if e.roleid == 5 and e.active(now)
        ]
        users.sort(key=lambda u: (u.lastname.lower(), u.firstname.lower()))
    return {"usergrades": [_user_grades(ctx, course, u) for u in users], "warnings": []}


# -- competencies ------------------------------------------------------------------------------------------


@_function(
    "core_competency_list_competency_frameworks",
    sort=Text(),
    order=Text(""),
    skip=Int(0),
    limit=Int(0),
    context=Single(keys={"contextid": Int(0), "contextlevel": Text(""), "instanceid": Int(0)}),
    includes=Text("children"),
    onlyvisible=Bool(False),
    query=Text(""),
)
def list_frameworks(ctx: Context, params: dict[str, Any]) -> Any:
    frameworks = [f for f in ctx.site.frameworks.values() if f.visible or not params["onlyvisible"]]
    if params["query"]:
        q = params["query"].lower()
        frameworks = [f for f in frameworks if q in f.shortname.lower() or q in f.idnumber.lower()]
    key = params["sort"] if params["sort"] in ("shortname", "idnumber", "id", "timecreated") else "id"
    frameworks.sort(key=lambda f: (getattr(f, key), f.id), reverse=params["order"].upper() == "DESC")
    frameworks = _page(frameworks, params["skip"], params["limit"])
    return [_render_framework(ctx, f) for f in frameworks]


def _page(items: list[Any], skip: int, limit: int) -> list[Any]:
    return items[skip : skip + limit] if limit else items[skip:]


@_function("core_competency_read_competency_framework", id=Int())
def read_framework(ctx: Context, params: dict[str, Any]) -> Any:
    fw = ctx.site.frameworks.get(params["id"])
    if fw is None:
        raise missing_record("competency_framework", "id = ?", [params["id"]])
    return _render_framework(ctx, fw)


_COMPETENCY_COLUMNS: Final = {
    "id": "id",
    "shortname": "shortname",
    "idnumber": "idnumber",
    "competencyframeworkid": "frameworkid",
    "parentid": "parentid",
    "path": "path",
    "sortorder": "sortorder",
    "timecreated": "timecreated",
}


@_function(
    "core_competency_list_competencies",
    filters=Multiple(item=Single(keys={"column": Text(), "value": Text()})),
    sort=Text(""),
    order=Text(""),
    skip=Int(0),
    limit=Int(0),
)
def list_competencies(ctx: Context, params: dict[str, Any]) -> Any:
    comps = list(ctx.site.competencies.values())
    for f in params["filters"]:
        attr = _COMPETENCY_COLUMNS.get(f["column"])
        if attr is None:
            raise invalid_parameter(f"Filter column was invalid: {f['column']}")
        comps = [c for c in comps if str(getattr(c, attr)) == f["value"]]
    attr = _COMPETENCY_COLUMNS.get(params["sort"], "id")
    comps.sort(key=lambda c: (getattr(c, attr), c.id), reverse=params["order"].upper() == "DESC")
    return [_render_competency(c) for c in _page(comps, params["skip"], params["limit"])]


@_function("core_competency_list_course_competencies", id=Int())
def list_course_competencies(ctx: Context, params: dict[str, Any]) -> Any:
    course = _course_or_missing(ctx, params["id"])
    return [
        {
            "competency": _render_competency(ctx.site.competencies[cc.competencyid]),
            "coursecompetency": _render_coursecompetency(cc),
        }
        for cc in _course_competencies(ctx, course.id)
    ]


@_function("core_competency_count_competencies_in_course", id=Int())
def count_course_competencies(ctx: Context, params: dict[str, Any]) -> Any:
    course = _course_or_missing(ctx, params["id"])
    return len(_course_competencies(ctx, course.id))


@_function(
    "core_competency_grade_competency_in_course",
    courseid=Int(),
    userid=Int(),
    competencyid=Int(),
    grade=Int(),
    note=Text(""),
)
def grade_competency(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    course = _course_or_missing(ctx, params["courseid"])
    user = _user_or_missing(ctx, params["userid"])
    if params["competencyid"] not in site.competencies:
        raise missing_record("competency", "id = ?", [params["competencyid"]])
    if not any(cc.competencyid == params["competencyid"] for cc in _course_competencies(ctx, course.id)):
        raise moodle_exception("coursecompetencynotfound", "The course competency was not found")
    now = site.now()
    ucc = next(
        (
            u
            for u in site.user_competencies.values()
            if (u.userid, u.courseid, u.competencyid) == (user.id, course.id, params["competencyid"])
        ),
        None,
    )
    if ucc is None:
        ucc = UserCompetencyCourse(
            id=site.new_id("competency_usercompcourse"),
            userid=user.id,
            courseid=course.id,
            competencyid=params["competencyid"],
            grade=None,
            proficiency=None,
            timecreated=now,
            timemodified=now,
        )
        site.user_competencies[ucc.id] = ucc
    ucc.grade = params["grade"]
    ucc.proficiency = params["grade"] >= 2
    ucc.timemodified = now
    ev = Evidence(
        id=site.new_id("competency_evidence"),
        usercompetencyid=ucc.id,
        courseid=course.id,
        userid=user.id,
        competencyid=params["competencyid"],
        grade=params["grade"],
        note=params["note"],
        actionuserid=ctx.userid,
        timecreated=now,
    )
    site.evidence[ev.id] = ev
    return _render_evidence(ctx, ev)


_RULE_OUTCOMES: Final = (
    (0, "Do nothing"),
    (1, "Attach evidence"),
    (2, "Send for review"),
    (3, "Complete the competency"),
)


@_function("tool_lp_data_for_course_competencies_page", courseid=Int(), moduleid=Int(0))
def course_competencies_page(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    course = _course_or_missing(ctx, params["courseid"])
    links = _course_competencies(ctx, course.id)
    comps = [site.competencies[cc.competencyid] for cc in links]
    entries = []
    for cc in links:
        comp = site.competencies[cc.competencyid]
        modules = [
            site.modules[cmid]
            for cmid, ids in site.module_competencies.items()
            if comp.id in ids and cmid in site.modules and site.modules[cmid].course == course.id
        ]
        entries.append(
            {
                "competency": _render_competency(comp),
                "coursecompetency": _render_coursecompetency(cc),
                "coursemodules": [
                    {
                        "id": m.id,
                        "name": m.name,
                        "url": f"{ctx.siteurl}/mod/{m.modname}/view.php?id={m.id}",
                        "iconurl": _icon(ctx, m),
                    }
                    for m in modules
                ],
                "ruleoutcomeoptions": [
                    {"value": v, "text": t, "selected": v == cc.ruleoutcome} for v, t in _RULE_OUTCOMES
                ],
                "comppath": _comppath(ctx, comp),
                "plans": [],
            }
        )
    return {
        "courseid": course.id,
        "pagecontextid": course.contextid,
        "competencies": entries,
        "canmanagecompetencyframeworks": True,
        "canmanagecoursecompetencies": True,
        "canconfigurecoursecompetencies": True,
        "cangradecompetencies": True,
        "settings": {
            "courseid": course.id,
            "pushratingstouserplans": True,
            "id": 0,
            "timecreated": 0,
            "timemodified": 0,
            "usermodified": 0,
        },
        "statistics": {
            "competencycount": len(comps),
            "proficientcompetencycount": 0,
            "proficientcompetencypercentage": 0,
            "proficientcompetencypercentageformatted": "0.0",
            "leastproficient": [_render_competency(c) for c in reversed(comps)],
            "leastproficientcount": len(comps),
            "canbegradedincourse": True,
            "canmanagecoursecompetencies": True,
        },
        "manageurl": f"{ctx.siteurl}/admin/tool/lp/competencyframeworks.php?pagecontextid=1",
        "pluginbaseurl": f"{ctx.siteurl}/admin/tool/lp",
    }


_COURSE_IMAGE: Final = (
    "data:image/svg+xml;base64,"
    "PD94bWwgdmVyc2lvbj0iMS4wIj8+PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4="
)


@_function(
    "tool_lp_data_for_user_competency_summary_in_course", userid=Int(), competencyid=Int(), courseid=Int()
)
def user_competency_summary(ctx: Context, params: dict[str, Any]) -> Any:
    site = ctx.site
    course = _course_or_missing(ctx, params["courseid"])
    user = _user_or_missing(ctx, params["userid"])
    comp = site.competencies.get(params["competencyid"])
    if comp is None:
        raise missing_record("competency", "id = ?", [params["competencyid"]])
    fw = site.frameworks[comp.frameworkid]
    ucc = next(
        (
            u
            for u in site.user_competencies.values()
            if (u.userid, u.courseid, u.competencyid) == (user.id, course.id, comp.id)
        ),
        None,
    )
    if ucc is None:
        ucc = UserCompetencyCourse(
            id=0, userid=user.id, courseid=course.id, competencyid=comp.id, grade=None, proficiency=None
        )
    evidence = sorted(
        (
            e
            for e in site.evidence.values()
            if (e.userid, e.courseid, e.competencyid) == (user.id, course.id, comp.id)
        ),
        key=lambda e: -e.id,
    )
    modules = [
        site.modules[cmid]
        for cmid, ids in site.module_competencies.items()
        if comp.id in ids and cmid in site.modules and site.modules[cmid].course == course.id
    ]
    category = site.categories.get(course.categoryid)
    return {
        "usercompetencysummary": {
            "showrelatedcompetencies": True,
            "cangrade": True,
            "competency": {
                "linkedcourses": [],
                "relatedcompetencies": [],
                "competency": _render_competency(comp),
                "framework": _render_framework(ctx, fw),
                "hascourses": False,
                "hasrelatedcompetencies": False,
                "scaleid": fw.scaleid,
                "scaleconfiguration": _SCALE_CONFIG,
                "taxonomyterm": "Competency",
                "comppath": _comppath(ctx, comp),
                "pluginbaseurl": f"{ctx.siteurl}/admin/tool/lp",
            },
            "user": _render_user_summary(ctx, user),
            "usercompetencycourse": {
                "userid": user.id,
                "courseid": course.id,
                "competencyid": comp.id,
                "proficiency": ucc.proficiency,
                "grade": ucc.grade,
                "id": ucc.id,
                "timecreated": ucc.timecreated,
                "timemodified": ucc.timemodified,
                "usermodified": 2,
                "gradename": _SCALE.get(ucc.grade or 0, "-"),
                "proficiencyname": "Yes" if ucc.proficiency else "No",
            },
            "evidence": [_render_evidence(ctx, e) for e in evidence],
        },
        "course": {
            "id": course.id,
            "fullname": course.fullname,
            "shortname": course.shortname,
            "idnumber": course.idnumber,
            "summary": course.summary,
            "summaryformat": course.summaryformat,
            "startdate": course.startdate,
            "enddate": course.enddate,
            "visible": bool(course.visible),
            "showactivitydates": True,
            "showcompletionconditions": True if course.enablecompletion else None,
            "pdfexportfont": "",
            "fullnamedisplay": course.fullname,
            "viewurl": f"{ctx.siteurl}/course/view.php?id={course.id}",
            "courseimage": _COURSE_IMAGE,
            "progress": 0,
            "hasprogress": False,
            "isfavourite": False,
            "hidden": False,
            "showshortname": False,
            "coursecategory": category.name if category else "",
        },
        "coursemodules": [
            {
                "id": m.id,
                "name": m.name,
                "url": f"{ctx.siteurl}/mod/{m.modname}/view.php?id={m.id}",
                "iconurl": _icon(ctx, m),
            }
            for m in modules
        ],
        "plans": [],
        "pluginbaseurl": f"{ctx.siteurl}/admin/tool/lp",
    }


# -- core_reportbuilder: custom reports (an administrator sets them up; see MoodleSimulator.add_report) --

PARTICIPANTS: Final = "core_course\\reportbuilder\\datasource\\participants"
_SOURCE_NAMES: Final = {
    PARTICIPANTS: "Course participants",
    "core_user\\reportbuilder\\datasource\\users": "Users",
    "core_course\\reportbuilder\\datasource\\courses": "Courses",
}
_ENROL_INSTANCES: Final = ("Manual enrolments", "Guest access", "Self enrolment (Student)")
"""The enrolment methods a new course gets; the simulator's enrolments are all manual."""

# One participants row: the course, the enrolment method, and the user enrolment with its user (or None).
_ReportRow = tuple[Course, str, "Enrolment | None", "User | None"]


def _userdate(ctx: Context, value: int | None) -> str:
    """``userdate()`` with ``strftimedaydatetime`` in English, in the token's user's time zone."""
    if not value:
        return ""
    when = dt.datetime.fromtimestamp(value, zoneinfo.ZoneInfo(ctx.site.timezone))
    hour = when.hour % 12 or 12
    return f"{when:%A}, {when.day} {when:%B} {when.year}, {hour}:{when:%M} {'AM' if when.hour < 12 else 'PM'}"


def _enrolment_status(ctx: Context, enrolment: Enrolment) -> str:
    if enrolment.status != 0:
        return "Suspended"
    return "Active" if enrolment.active(ctx.site.now()) else "Not current"


def _progress_percent(ctx: Context, course: Course, user: User) -> str:
    """``completion_progress``: Moodle's course progress, "0.0%" where Moodle has none."""
    site = ctx.site
    value = 0.0
    if course.enablecompletion and site.is_tracked(user.id, course.id):
        cc = site.course_completions.get((user.id, course.id))
        progress = site.progress(user.id, course.id)
        value = 100.0 if cc is not None and cc.timecompleted else float(progress or 0.0)
    return f"{value:.1f}%"


def _cell(ctx: Context, column: str, row: _ReportRow) -> str | None:
    course, method, enrolment, user = row
    link = f'<a href="{ctx.siteurl}/course/view.php?id={course.id}">{{}}</a>'
    if column == "course:courseshortnamewithlink":
        return link.format(html.escape(course.shortname))
    if column == "course:coursefullnamewithlink":
        return link.format(html.escape(course.fullname))
    if column == "course:shortname":
        return html.escape(course.shortname)
    if column == "enrol:name":
        return method
    if user is None or enrolment is None:
        return None if column == "enrolment:status" else ""
    cc = ctx.site.course_completions.get((user.id, course.id))
    if column == "user:fullnamewithlink":
        return f'<a href="{ctx.siteurl}/user/profile.php?id={user.id}">{html.escape(user.fullname)}</a>'
    if column == "user:username":
        return user.username
    if column == "enrolment:status":
        return _enrolment_status(ctx, enrolment)
    if column == "enrolment:timestarted":
        return _userdate(ctx, enrolment.timestart or enrolment.timecreated)
    if column == "enrolment:timecreated":
        return _userdate(ctx, enrolment.timecreated)
    if column == "completion:timecompleted":
        return _userdate(ctx, cc.timecompleted if cc else None)
    if column == "completion:completed":
        return "" if cc is None else "Yes" if cc.timecompleted else "No"
    if column == "completion:progresspercent":
        return _progress_percent(ctx, course, user)
    raise AssertionError(f"the simulator does not render the report column {column}")


_HEADERS: Final = {
    "course:courseshortnamewithlink": "Course short name with link",
    "course:coursefullnamewithlink": "Course full name with link",
    "course:shortname": "Course short name",
    "enrol:name": "Enrolment method",
    "user:fullnamewithlink": "Full name with link",
    "user:username": "Username",
    "enrolment:status": "Status",
    "enrolment:timestarted": "Time started",
    "enrolment:timecreated": "Time created",
    "completion:timecompleted": "Time completed",
    "completion:completed": "Completed",
    "completion:progresspercent": "Student progress",
}
REPORT_COLUMNS: Final = frozenset(_HEADERS)
"""The report columns the simulator can render."""


def _report_page(ctx: Context, report: CustomReport, start: int, count: int) -> tuple[list[_ReportRow], int]:
    """One page of the participants source's rows (course x enrolment method x user enrolment) in the
    report's sort order, and the number of rows in all. A course's rows come together (courses by the
    report's course sort column, else by id); within it the methods without enrolments first (no user, as
    Moodle's), then the enrolments by the user sort column, else by user id. Only the courses the page
    covers are built, so a page of a big site costs what the page holds."""
    site = ctx.site
    course_sort = next((c for c in report.sort if c.startswith("course:")), None)
    user_sort = next((c for c in report.sort if c.startswith("user:")), None)
    courses = [c for c in site.iter_courses() if not c.is_site]
    if course_sort is not None:
        courses.sort(key=lambda c: c.shortname if "shortname" in course_sort else c.fullname)
    rows: list[_ReportRow] = []
    total = 0
    for course in courses:
        enrolled = sum(1 for e in site.enrolments.group(1, course.id) if not site.users[e.userid].deleted)
        size = len(_ENROL_INSTANCES) - 1 + max(1, enrolled)
        if total + size > start and total < start + count:
            course_rows: list[_ReportRow] = [(course, m, None, None) for m in _ENROL_INSTANCES[1:]]
            enrolments = site.course_enrolments(course.id)
            if user_sort is not None:
                enrolments.sort(
                    key=lambda e: (
                        site.users[e.userid].username
                        if user_sort == "user:username"
                        else site.users[e.userid].fullname
                    )
                )
            if not enrolments:
                course_rows.append((course, _ENROL_INSTANCES[0], None, None))
            course_rows.extend((course, _ENROL_INSTANCES[0], e, site.users[e.userid]) for e in enrolments)
            rows.extend(course_rows[max(0, start - total) : start + count - total])
        total += size
    return rows, total


def _render_report_details(ctx: Context, report: CustomReport) -> dict[str, Any]:
    admin = ctx.site.users[2]
    return {
        "name": report.name,
        "source": report.source,
        "type": 0,
        "uniquerows": False,
        "conditiondata": report.conditiondata,
        "settingsdata": None,
        "contextid": 1,
        "component": "",
        "area": "",
        "itemid": 0,
        "usercreated": 2,
        "id": report.id,
        "timecreated": report.timecreated,
        "timemodified": report.timecreated,
        "usermodified": 2,
        "sourcename": _SOURCE_NAMES.get(report.source),
        "tags": [],
        "customfields": {"data": []},
        "modifiedby": {
            "id": admin.id,
            "email": admin.email,
            "idnumber": admin.idnumber,
            "phone1": "",
            "phone2": "",
            "department": admin.department,
            "institution": admin.institution,
            "fullname": admin.fullname,
            "identity": admin.email,
            "profileurl": f"{ctx.siteurl}/user/profile.php?id={admin.id}",
            "profileimageurl": _img(ctx, "f1"),
            "profileimageurlsmall": _img(ctx, "f2"),
        },
    }


@_function("core_reportbuilder_list_reports", page=Int(0), perpage=Int(10))
def list_reports(ctx: Context, params: dict[str, Any]) -> Any:
    reports = sorted(ctx.site.reports.values(), key=lambda r: (r.name, r.id))
    start = params["page"] * params["perpage"]
    return {
        "reports": [_render_report_details(ctx, r) for r in reports[start : start + params["perpage"]]],
        "warnings": [],
    }


@_function("core_reportbuilder_retrieve_report", reportid=Int(), page=Int(0), perpage=Int(10))
def retrieve_report(ctx: Context, params: dict[str, Any]) -> Any:
    report = ctx.site.reports.get(params["reportid"])
    if report is None:
        raise missing_record("reportbuilder_report", "id = ?", [params["reportid"]])
    start = params["page"] * params["perpage"]
    rows, total = (
        _report_page(ctx, report, start, params["perpage"]) if report.source == PARTICIPANTS else ([], 0)
    )
    return {
        "details": _render_report_details(ctx, report),
        "data": {
            "headers": [_HEADERS[c] for c in report.columns],
            "rows": [{"columns": [_cell(ctx, c, row) for c in report.columns]} for row in rows],
            "totalrowcount": total,
        },
        "warnings": [],
    }
