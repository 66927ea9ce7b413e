"""The simulated Moodle site's state: users, categories, courses, activities, enrolments, completion,
grades and competencies, plus the two ways to seed it (generated from a seed, or the recorded site).

This is the simulator's own database. It is mutable on purpose (the web-service functions write to it)
and it is not a unified model: it mirrors Moodle's tables closely enough that the JSON the functions
render has the shapes recorded from Moodle 5.0.
"""

from __future__ import annotations

import hashlib
import html
import math
import random
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Final, Literal, TypeVar

import attrs

__all__ = [
    "ASSIGNABLE_ROLES",
    "ROLES",
    "ActivityCompletion",
    "Category",
    "Competency",
    "Course",
    "CourseCompetency",
    "CourseCompletion",
    "CustomReport",
    "Enrolment",
    "Evidence",
    "Framework",
    "Grade",
    "Module",
    "Section",
    "Site",
    "User",
    "UserCompetencyCourse",
]

SEED_TIME: Final = 1795431563
"""Seeded timestamps are anchored here (the recordings' clock), so a seed always gives the same data."""

ROLES: Final = {1: "manager", 3: "editingteacher", 4: "teacher", 5: "student"}
ASSIGNABLE_ROLES: Final = frozenset(ROLES)
TRACKED_ROLES: Final = frozenset({5})
"""Roles with ``moodle/course:isincompletionreports``: only their holders have their completion tracked."""
HIDDEN_COURSE_ROLES: Final = frozenset({1, 3, 4})
"""Roles with ``moodle/course:viewhiddencourses``."""

CompletionRule = Literal["view", "grade", "manual", "none"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class IndexedTable(dict[K, V]):
    """A dict that also keeps its values grouped by some keys, so "the enrolments of course 7" is a
    lookup and not a scan of 20,000 rows. Mutate it only through item assignment, ``del`` and ``pop``."""

    def __init__(self, *groupers: Callable[[K, V], Hashable]) -> None:
        super().__init__()
        self._groupers = groupers
        self._groups: list[dict[Hashable, dict[K, V]]] = [{} for _ in groupers]

    def __setitem__(self, key: K, value: V) -> None:
        if key in self:
            self._unindex(key, dict.__getitem__(self, key))
        super().__setitem__(key, value)
        for grouper, groups in zip(self._groupers, self._groups, strict=True):
            groups.setdefault(grouper(key, value), {})[key] = value

    def __delitem__(self, key: K) -> None:
        self._unindex(key, dict.__getitem__(self, key))
        super().__delitem__(key)

    def pop(self, key: K, *default: Any) -> Any:
        if key in self:
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    def _unindex(self, key: K, value: V) -> None:
        for grouper, groups in zip(self._groupers, self._groups, strict=True):
            groups.get(grouper(key, value), {}).pop(key, None)

    def group(self, index: int, value: Hashable) -> list[V]:
        return list(self._groups[index].get(value, {}).values())


@attrs.define
class User:
    id: int
    username: str
    firstname: str
    lastname: str
    email: str
    idnumber: str = ""
    department: str = ""
    institution: str = ""
    city: str = ""
    country: str = ""
    description: str = ""
    employeeid: str | None = None
    auth: str = "manual"
    suspended: bool = False
    deleted: bool = False
    timecreated: int = SEED_TIME
    lang: str = "en"
    timezone: str = "99"
    """An IANA name, or "99": the site's default."""

    @property
    def fullname(self) -> str:
        return f"{self.firstname} {self.lastname}"

    def delete(self, when: int) -> None:
        """What Moodle's delete_user() does to the row it keeps."""
        self.deleted = True
        self.username = f"{self.email}.{when}"
        self.email = hashlib.md5(f"{self.id}:{when}".encode()).hexdigest()
        self.idnumber = ""
        self.employeeid = None


@attrs.define
class Category:
    id: int
    name: str
    idnumber: str | None
    description: str = ""
    parent: int = 0
    sortorder: int = 10000
    visible: int = 1
    timemodified: int = SEED_TIME


@attrs.define
class Section:
    id: int
    section: int
    name: str
    visible: int = 1
    component: str | None = None
    """``mod_subsection`` for a section delegated to a subsection module (Moodle 5), else None."""
    itemid: int | None = None
    """The subsection's instance id, for a delegated section."""


@attrs.define
class Module:
    id: int
    course: int
    section: int
    modname: str
    name: str
    instance: int
    contextid: int
    rule: CompletionRule = "none"
    grademax: float | None = None
    gradepass: float = 0.0
    gradeitemid: int | None = None
    visible: int = 1
    url: str = ""

    def grade_state(self, grade: float) -> int:
        """Completion by "receive a grade": complete-pass/fail against a pass grade, else complete."""
        if self.gradepass > 0:
            return 2 if grade >= self.gradepass else 3
        return 1

    @property
    def tracking(self) -> int:
        """``course_modules.completion``: 0 none, 1 manual, 2 automatic."""
        return {"none": 0, "manual": 1}.get(self.rule, 2)


@attrs.define
class Course:
    id: int
    shortname: str
    fullname: str
    categoryid: int
    idnumber: str = ""
    summary: str = ""
    summaryformat: int = 1
    format: str = "topics"
    visible: int = 1
    startdate: int = 0
    enddate: int = 0
    numsections: int = 1
    enablecompletion: int = 1
    lang: str = ""
    timecreated: int = SEED_TIME
    timemodified: int = SEED_TIME
    sortorder: int = 0
    newsitems: int = 1
    showgrades: int = 1
    contextid: int = 0
    cacherev: int = SEED_TIME
    manual_enrol: bool = True
    criteria: list[int] = attrs.field(factory=list)
    """Course-completion criteria: the cmids whose completion is required (aggregation "all")."""
    sections: list[Section] = attrs.field(factory=list)
    coursegradeitem: int = 0
    """The course total's grade item; 0 until Moodle creates it (on the first look at the gradebook)."""
    gradecategory: int = 0
    """The course's top grade category (the course total's ``iteminstance``); 0 until created."""

    @property
    def is_site(self) -> bool:
        return self.format == "site"


@attrs.define
class Enrolment:
    userid: int
    courseid: int
    roleid: int
    status: int = 0
    timestart: int = 0
    timeend: int = 0
    timecreated: int = SEED_TIME
    lastaccess: int | None = None
    """When the user last accessed the course (``user_lastaccess``); None: never."""

    def active(self, now: int) -> bool:
        return self.status == 0 and self.timestart <= now and (self.timeend == 0 or self.timeend > now)


@attrs.define
class ActivityCompletion:
    state: int = 0
    timecompleted: int = 0
    overrideby: int | None = None
    viewed: bool = False


@attrs.define
class Grade:
    raw: float | None
    dategraded: int | None
    feedback: str = ""


@attrs.define
class CourseCompletion:
    marked: dict[int, int] = attrs.field(factory=dict)
    """Criterion cmid -> the time Moodle marked that criterion complete."""
    timecompleted: int | None = None
    reaggregate: float | None = None
    """Wall-clock time the user was flagged for re-aggregation (None: nothing pending)."""


@attrs.define
class Framework:
    id: int
    shortname: str
    idnumber: str
    description: str
    timecreated: int = SEED_TIME
    visible: bool = True
    scaleid: int = 2


@attrs.define
class Competency:
    id: int
    frameworkid: int
    shortname: str
    idnumber: str
    description: str
    sortorder: int = 0
    parentid: int = 0
    path: str = "/0/"
    timecreated: int = SEED_TIME


@attrs.define
class CourseCompetency:
    id: int
    courseid: int
    competencyid: int
    sortorder: int
    ruleoutcome: int = 1
    timecreated: int = SEED_TIME


@attrs.define
class UserCompetencyCourse:
    id: int
    userid: int
    courseid: int
    competencyid: int
    grade: int | None
    proficiency: bool | None
    timecreated: int = SEED_TIME
    timemodified: int = SEED_TIME


@attrs.define
class Evidence:
    id: int
    usercompetencyid: int
    courseid: int
    userid: int
    competencyid: int
    grade: int | None
    note: str
    actionuserid: int
    timecreated: int


@attrs.define
class CustomReport:
    """A Report builder custom report: its source and column identifiers (e.g. ``user:username``); the
    columns in ``sort`` are sorted ascending, in that order; ``conditiondata`` the conditions' values."""

    id: int
    name: str
    source: str
    columns: list[str]
    sort: list[str] = attrs.field(factory=list)
    conditiondata: str | None = None
    timecreated: int = SEED_TIME


def _enrolment_table() -> IndexedTable[tuple[int, int], Enrolment]:
    return IndexedTable(lambda key, _: key[0], lambda key, _: key[1])


def _module_table() -> IndexedTable[int, Module]:
    return IndexedTable(lambda _, module: module.course)


@attrs.define
class Site:
    """The whole simulated site; ``clock`` gives "now" for writes (Moodle stamps them with server time)."""

    sitename: str = "Simulated Moodle"
    site_shortname: str = "sim"
    site_summary: str = "Simulated Moodle site"
    users: dict[int, User] = attrs.field(factory=dict)
    categories: dict[int, Category] = attrs.field(factory=dict)
    courses: dict[int, Course] = attrs.field(factory=dict)
    modules: IndexedTable[int, Module] = attrs.field(factory=_module_table)
    enrolments: IndexedTable[tuple[int, int], Enrolment] = attrs.field(factory=_enrolment_table)
    """(userid, courseid) -> the user's manual enrolment."""
    completions: dict[tuple[int, int], ActivityCompletion] = attrs.field(factory=dict)
    """(userid, cmid) -> activity completion."""
    grades: dict[tuple[int, int], Grade] = attrs.field(factory=dict)
    """(userid, cmid) -> the grade of the activity's grade item."""
    course_completions: dict[tuple[int, int], CourseCompletion] = attrs.field(factory=dict)
    frameworks: dict[int, Framework] = attrs.field(factory=dict)
    competencies: dict[int, Competency] = attrs.field(factory=dict)
    course_competencies: dict[int, CourseCompetency] = attrs.field(factory=dict)
    module_competencies: dict[int, list[int]] = attrs.field(factory=dict)
    user_competencies: dict[int, UserCompetencyCourse] = attrs.field(factory=dict)
    evidence: dict[int, Evidence] = attrs.field(factory=dict)
    reports: dict[int, CustomReport] = attrs.field(factory=dict)
    timezone: str = "UTC"
    """The time zone of the token's user (and the site's): custom reports format dates in it."""
    languages: tuple[str, ...] = ("en",)
    completion_cron: float = 60.0
    """Seconds between runs of the simulated ``completion_regular_task`` (Moodle's cron runs every
    minute); ``0`` reviews and aggregates at once, ``math.inf`` only when `run_completion_task` is called."""
    clock: Callable[[], float] = time.time
    next_ids: dict[str, int] = attrs.field(factory=dict)
    unreviewed: set[tuple[int, int]] = attrs.field(factory=set)
    """(userid, courseid) whose activity criteria changed without review (grade-driven completion)."""
    pending: set[tuple[int, int]] = attrs.field(factory=set)
    """(userid, courseid) flagged for completion re-aggregation by the cron task."""
    last_task_run: float | None = None
    """When the scheduled completion task last ran (None: the schedule starts at the next look)."""

    # -- identifiers ---------------------------------------------------------------------------------

    def new_id(self, table: str) -> int:
        value = self.next_ids.get(table, 1)
        self.next_ids[table] = value + 1
        return value

    def bump(self, table: str, used: int) -> None:
        self.next_ids[table] = max(self.next_ids.get(table, 1), used + 1)

    def now(self) -> int:
        return int(self.clock())

    # -- queries -------------------------------------------------------------------------------------

    def course_modules(self, courseid: int) -> list[Module]:
        course = self.courses[courseid]
        order = {s.section: i for i, s in enumerate(course.sections)}
        mods = self.modules.group(0, courseid)
        return sorted(mods, key=lambda m: (order.get(m.section, 0), m.id))

    def tracked_modules(self, courseid: int) -> list[Module]:
        return [m for m in self.course_modules(courseid) if m.tracking]

    def graded_modules(self, courseid: int) -> list[Module]:
        return [m for m in self.course_modules(courseid) if m.grademax is not None]

    def course_enrolments(self, courseid: int) -> list[Enrolment]:
        return sorted(
            (e for e in self.enrolments.group(1, courseid) if not self.users[e.userid].deleted),
            key=lambda e: e.userid,
        )

    def user_enrolments(self, userid: int) -> list[Enrolment]:
        return self.enrolments.group(0, userid)

    def is_tracked(self, userid: int, courseid: int) -> bool:
        """``completion_info::is_tracked_user``: an active enrolment with a role in the completion reports."""
        enrolment = self.enrolments.get((userid, courseid))
        return enrolment is not None and enrolment.active(self.now()) and enrolment.roleid in TRACKED_ROLES

    def completion(self, userid: int, cmid: int) -> ActivityCompletion:
        return self.completions.get((userid, cmid)) or ActivityCompletion()

    def course_completion(self, userid: int, courseid: int) -> CourseCompletion:
        self.run_due_completion_tasks()
        key = (userid, courseid)
        if key not in self.course_completions:
            self.course_completions[key] = CourseCompletion()
        return self.course_completions[key]

    def progress(self, userid: int, courseid: int) -> float | None:
        """``core_completion\\progress``: 100 for a completed course, else the share of tracked activities
        complete or complete-pass (complete-fail does not count); None without tracked activities."""
        if self.course_completion(userid, courseid).timecompleted is not None:
            return 100
        mods = self.tracked_modules(courseid)
        if not mods:
            return None
        done = sum(1 for m in mods if self.completion(userid, m.id).state in (1, 2))
        return done * 100 / len(mods)

    # -- writes: completion --------------------------------------------------------------------------

    def set_activity_state(
        self, userid: int, module: Module, state: int, *, overrideby: int | None, via_override: bool
    ) -> ActivityCompletion:
        """``completion_info::update_state``: no-op when already in that state, or when asked for
        "complete" and the activity is complete-pass or complete-fail."""
        current = self.completions.setdefault((userid, module.id), ActivityCompletion())
        if module.tracking == 0:
            return current
        if state == current.state or (state == 1 and current.state in (2, 3)):
            return current
        now = self.now()
        current.state = state
        current.timecompleted = now if state else 0
        current.overrideby = overrideby
        self._completion_changed(userid, module, now, criterion_now=via_override)
        return current

    def _completion_changed(self, userid: int, module: Module, now: int, *, criterion_now: bool) -> None:
        course = self.courses[module.course]
        if not course.enablecompletion or module.id not in course.criteria:
            return
        cc = self.course_completion(userid, course.id)
        if criterion_now or self.completion_cron <= 0:
            # A single-user change (override, manual) reviews the criterion and aggregates the course at
            # once (completion_info::internal_set_data); seen on the real site: overriding MGT110's only
            # activity completes the course in the same call.
            if self.completion(userid, module.id).state in (1, 2, 3):
                cc.marked.setdefault(module.id, now)
            else:
                cc.marked.pop(module.id, None)
            self._aggregate(userid, course.id, review=self.completion_cron <= 0)
        else:
            # A grade-driven change waits for the completion task: its first run reviews the criteria and
            # flags the user, a later run aggregates (real Moodle: `accepted` until cron ran twice).
            self.unreviewed.add((userid, course.id))

    def _aggregate(self, userid: int, courseid: int, *, review: bool = True) -> None:
        course = self.courses[courseid]
        cc = self.course_completions.setdefault((userid, courseid), CourseCompletion())
        if review:
            for cmid in course.criteria:
                if self.completion(userid, cmid).state in (1, 2, 3):
                    cc.marked.setdefault(cmid, self.completion(userid, cmid).timecompleted or self.now())
        cc.reaggregate = None
        self.pending.discard((userid, courseid))
        if cc.timecompleted is None and course.criteria and all(c in cc.marked for c in course.criteria):
            cc.timecompleted = max(cc.marked[c] for c in course.criteria)

    def run_completion_task(self, started: float) -> int:
        """One run of ``\\core\\task\\completion_regular_task`` that started at ``started``.

        As in Moodle, it first reviews the activity criteria of users whose completion changed (which
        flags them for re-aggregation) and then aggregates only users flagged *before* it started, so a
        grade-driven completion needs two runs. Returns how many users it aggregated.
        """
        for userid, courseid in sorted(self.unreviewed):
            if courseid not in self.courses:  # deleted meanwhile
                continue
            cc = self.course_completions.setdefault((userid, courseid), CourseCompletion())
            for cmid in self.courses[courseid].criteria:
                activity = self.completion(userid, cmid)
                if activity.state in (1, 2, 3):
                    cc.marked.setdefault(cmid, activity.timecompleted or int(started))
            cc.reaggregate = started
            self.pending.add((userid, courseid))
        self.unreviewed.clear()
        done = 0
        for key in sorted(self.pending):
            flagged = self.course_completions.get(key)
            if flagged is None or key[1] not in self.courses:
                self.pending.discard(key)
            elif flagged.reaggregate is not None and flagged.reaggregate < started:
                self._aggregate(*key, review=False)
                done += 1
        return done

    def run_due_completion_tasks(self) -> int:
        """The scheduled task runs due by now (every ``completion_cron`` seconds); users aggregated."""
        interval = self.completion_cron
        if not 0 < interval < math.inf:
            return 0
        now = self.clock()
        if self.last_task_run is None:
            self.last_task_run = now
        done = 0
        while self.last_task_run + interval <= now:
            self.last_task_run += interval
            if not (self.unreviewed or self.pending):
                # Idle runs change nothing: move to the last one due.
                self.last_task_run += (now - self.last_task_run) // interval * interval
                break
            done += self.run_completion_task(self.last_task_run)
        return done

    def set_grade(self, userid: int, module: Module, grade: float | None, feedback: str = "") -> None:
        now = self.now()
        self.grades[(userid, module.id)] = Grade(
            raw=grade, dategraded=now if grade is not None else None, feedback=feedback
        )
        if module.rule == "grade" and grade is not None:
            state = module.grade_state(grade)
            current = self.completions.setdefault((userid, module.id), ActivityCompletion())
            if current.state != state:
                current.state = state
                current.timecompleted = now
                current.overrideby = None
                self._completion_changed(userid, module, now, criterion_now=False)

    # -- seeding helpers -----------------------------------------------------------------------------

    def seed_completion(
        self, userid: int, module: Module, state: int, when: int, overrideby: int | None = None
    ) -> None:
        self.completions[(userid, module.id)] = ActivityCompletion(
            state=state, timecompleted=when, overrideby=overrideby, viewed=module.rule == "view"
        )

    def seed_grade(self, userid: int, module: Module, grade: float, when: int) -> None:
        self.grades[(userid, module.id)] = Grade(raw=grade, dategraded=when)
        if module.rule == "grade":
            state = module.grade_state(grade)
            self.seed_completion(userid, module, state, when)

    def seed_aggregate_all(self) -> None:
        for enrolment in self.enrolments.values():
            course = self.courses[enrolment.courseid]
            if course.enablecompletion and course.criteria:
                self._aggregate(enrolment.userid, enrolment.courseid)

    def iter_courses(self) -> Iterator[Course]:
        return iter(sorted(self.courses.values(), key=lambda c: c.id))


# ---------------------------------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------------------------------

_FIRST: Final = [
    "Alice",
    "Bruno",
    "Wei",
    "Dana",
    "Erik",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Liam",
    "Mei",
    "Noah",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Samir",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Amara",
    "Bjorn",
    "Chloe",
    "Diego",
    "Elif",
    "Femi",
    "Gita",
    "Hugo",
    "Ivy",
    "Jun",
]
_LAST: Final = [
    "Martin",
    "Silva",
    "Chen",
    "Okafor",
    "Larsen",
    "Haddad",
    "Kim",
    "Tanaka",
    "Garcia",
    "Weber",
    "Iyer",
    "Murphy",
    "Lin",
    "Dubois",
    "Petrova",
    "Santos",
    "Novak",
    "Rossi",
    "Khan",
    "Walsh",
    "Ali",
    "Costa",
    "Zhang",
    "Lopez",
    "Demir",
    "Fischer",
    "Mensah",
    "Berg",
    "Moreau",
    "Alvarez",
]
_DEPARTMENTS: Final = ("Engineering", "Data", "Operations", "Finance", "Sales", "Learning & Development")
_CITIES: Final = (("London", "GB"), ("Lisbon", "PT"), ("Oslo", "NO"), ("Leeds", "GB"), ("Berlin", "DE"))
_TOPICS: Final = (
    "Python Programming",
    "Data Science",
    "Project Management",
    "Cloud Computing",
    "Security Awareness",
    "Negotiation",
    "Leadership",
    "Accounting Basics",
    "SQL",
    "Customer Success",
    "Machine Learning",
    "Design Thinking",
    "Public Speaking",
    "Kubernetes",
    "Agile Delivery",
    "Privacy and GDPR",
)
_SKILLS: Final = (
    "Python syntax and semantics",
    "Version control with Git",
    "Automated testing",
    "Data visualisation",
    "Statistics",
    "Stakeholder management",
    "Risk assessment",
    "Budgeting",
    "Written communication",
    "Incident response",
    "Networking fundamentals",
    "Coaching",
    "Query optimisation",
    "Negotiation",
)


def _add_base_users(site: Site) -> None:
    site.users[1] = User(
        id=1,
        username="guest",
        firstname="Guest user",
        lastname=" ",
        email="root@localhost",
        description="This user is a special user that allows read-only access to some courses.",
    )
    site.users[2] = User(
        id=2, username="admin", firstname="Admin", lastname="User", email="admin@example.com"
    )
    site.bump("user", 2)


def _add_site_course(site: Site, *, shortname: str, fullname: str, summary: str) -> None:
    site.courses[1] = Course(
        id=1,
        shortname=shortname,
        fullname=fullname,
        categoryid=0,
        summary=summary,
        format="site",
        enablecompletion=0,
        newsitems=3,
        sortorder=1,
        contextid=2,
        manual_enrol=False,
        timecreated=SEED_TIME - 418,
        timemodified=SEED_TIME - 374,
        cacherev=SEED_TIME - 380,
        sections=[Section(id=0, section=0, name="")],
    )
    site.bump("course", 1)


def add_module(
    site: Site,
    course: Course,
    section: int,
    modname: str,
    name: str,
    *,
    rule: CompletionRule = "none",
    grademax: float | None = None,
    gradepass: float = 0.0,
    cmid: int | None = None,
    instance: int | None = None,
    url: str = "",
) -> Module:
    cmid = cmid if cmid is not None else site.new_id("course_modules")
    site.bump("course_modules", cmid)
    if instance is None:
        instance = site.new_id(modname)
    site.bump(modname, instance)
    module = Module(
        id=cmid,
        course=course.id,
        section=section,
        modname=modname,
        name=name,
        instance=instance,
        contextid=site.new_id("context"),
        rule=rule,
        grademax=grademax,
        gradepass=gradepass,
        url=url,
    )
    if grademax is not None:
        module.gradeitemid = site.new_id("grade_items")
    site.modules[cmid] = module
    return module


def add_subsection(site: Site, course: Course, section: int, name: str) -> tuple[Module, int]:
    """A Moodle 5 subsection in ``section``: its module, and the number of the section it delegates to
    (listed after the course's own sections, as Moodle numbers them)."""
    module = add_module(site, course, section, "subsection", name)
    number = max(s.section for s in course.sections) + 1
    course.sections.append(
        Section(
            id=site.new_id("course_sections"),
            section=number,
            name=name,
            component="mod_subsection",
            itemid=module.instance,
        )
    )
    return module, number


def _new_course(site: Site, **kwargs: object) -> Course:
    course = Course(**kwargs)  # type: ignore[arg-type]
    site.bump("course", course.id)
    course.contextid = site.new_id("context")
    course.coursegradeitem = site.new_id("grade_items")
    course.gradecategory = site.new_id("grade_categories")
    course.sections = [
        Section(id=site.new_id("course_sections"), section=i, name="General" if i == 0 else f"Topic {i}")
        for i in range(course.numsections + 1)
    ]
    site.courses[course.id] = course
    return course


def generate_site(
    *, users: int, courses: int, enrollments: int, seed: int, languages: tuple[str, ...] = ("en",)
) -> Site:
    """A deterministic site of the requested size.

    Variety the connector must cope with: suspended and deleted users, hidden courses, courses without
    completion tracking, without graded activities or without a manual enrolment instance, teachers
    among the enrolled, suspended enrolments, and learners in every completion state (complete-fail too).
    """
    rng = random.Random(seed)
    site = Site(languages=languages)
    site.next_ids["context"] = 30
    _add_base_users(site)
    _add_site_course(site, shortname="sim", fullname="Simulated Moodle", summary="Simulated Moodle site")

    for i in range(users):
        uid = i + 3
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        department = rng.choice(_DEPARTMENTS)
        city, country = rng.choice(_CITIES)
        email = f"{first.lower()}.{last.lower()}{uid}@example.com"
        user = User(
            id=uid,
            username=f"{first.lower()}.{last.lower()}{uid}",
            firstname=first,
            lastname=last,
            email=email,
            idnumber=f"S{10000 + uid}",
            department=department,
            institution="Example Corp",
            city=city,
            country=country,
            description=html.escape(f"{first} {last} ({department})", quote=False),
            employeeid=f"E-{40000 + uid}",
            suspended=rng.random() < 0.05,
            timecreated=SEED_TIME - rng.randint(0, 400) * 86400,
        )
        site.users[uid] = user
        site.bump("user", uid)

    ncat = max(1, min(6, courses // 20 + 1))
    site.categories[1] = Category(
        id=1, name="Category 1", idnumber=None, sortorder=10000, timemodified=SEED_TIME - 418
    )
    for c in range(2, ncat + 2):
        site.categories[c] = Category(
            id=c,
            name=f"Department {c - 1}",
            idnumber=f"DEP{c - 1}",
            description=f"<p>Courses of department {c - 1}.</p>",
            sortorder=c * 10000,
        )
    site.bump("course_categories", ncat + 1)

    for i in range(courses):
        cid = i + 2
        topic = _TOPICS[i % len(_TOPICS)]
        level = 100 + i
        category = rng.randint(2, ncat + 1)
        start = SEED_TIME + rng.randint(-200, 60) * 86400
        completion_on = rng.random() >= 0.1
        course = _new_course(
            site,
            id=cid,
            shortname=f"C{level}",
            fullname=f"{topic} {level}",
            categoryid=category,
            idnumber=f"C{level}-2026",
            summary=f"<p>{topic}, level {level}.</p>",
            visible=0 if rng.random() < 0.1 else 1,
            startdate=start,
            enddate=start + 120 * 86400,
            numsections=rng.randint(1, 4),
            enablecompletion=1 if completion_on else 0,
            sortorder=category * 10000 + i + 1,
            manual_enrol=rng.random() >= 0.05,
            timecreated=SEED_TIME - rng.randint(0, 300) * 86400,
        )
        course.timemodified = course.timecreated
        add_module(site, course, 0, "forum", "Announcements")
        last_section = course.numsections
        tracked = completion_on
        add_module(site, course, 1, "page", f"{topic}: syllabus", rule="view" if tracked else "none")
        graded = rng.random() >= 0.15
        if graded and rng.random() < 0.8:
            add_module(
                site,
                course,
                min(2, last_section),
                "assign",
                f"{topic}: assignment",
                rule="grade" if tracked else "none",
                grademax=100.0,
                gradepass=float(rng.choice((0, 50, 60))),
            )
        has_graded = any(m.grademax for m in site.graded_modules(cid))
        if graded and (rng.random() < 0.5 or not has_graded):
            add_module(
                site,
                course,
                last_section,
                "quiz",
                f"{topic}: quiz",
                rule="grade" if tracked else "none",
                grademax=10.0,
            )
        if rng.random() < 0.5:
            add_module(
                site,
                course,
                last_section,
                "url",
                f"{topic}: reading",
                rule="manual" if tracked else "none",
                url="https://example.com/reading",
            )
        if rng.random() < 0.3:
            add_module(site, course, last_section, "label", f"{topic}: more material soon.")
        if tracked:
            course.criteria = [m.id for m in site.tracked_modules(cid)]

    # Deleted users: Moodle keeps a mangled row and has dropped their enrolments, so none are drawn below.
    for user in list(site.users.values()):
        if user.id > 2 and rng.random() < 0.02:
            user.delete(SEED_TIME - rng.randint(1, 90) * 86400)

    # Enrolments: distinct (user, course) pairs drawn from the live users.
    live = [u.id for u in site.users.values() if u.id > 2 and not u.deleted]
    course_ids = [c for c in site.courses if c != 1]
    pairs = min(enrollments, len(live) * len(course_ids))
    if pairs:
        for flat in rng.sample(range(len(live) * len(course_ids)), pairs):
            uid, cid = live[flat // len(course_ids)], course_ids[flat % len(course_ids)]
            course = site.courses[cid]
            role = 5 if rng.random() >= 0.04 else rng.choice((3, 4))
            enrolment = Enrolment(
                userid=uid,
                courseid=cid,
                roleid=role,
                status=1 if rng.random() < 0.03 else 0,
                timecreated=course.timecreated + rng.randint(0, 60) * 86400,
            )
            site.enrolments[(uid, cid)] = enrolment
            if role != 5 or not course.enablecompletion:
                continue
            roll = rng.random()
            mods = site.tracked_modules(cid)
            if roll < 0.4 or not mods:
                continue
            done = mods if roll >= 0.72 else rng.sample(mods, rng.randint(1, max(1, len(mods) - 1)))
            for mod in done:
                when = enrolment.timecreated + rng.randint(1, 50) * 86400
                if mod.grademax is not None:
                    site.seed_grade(uid, mod, round(rng.uniform(0.3, 1.0) * mod.grademax, 1), when)
                else:
                    site.seed_completion(uid, mod, 1, when)

    site.seed_aggregate_all()
    _add_variety(site)

    nfw = max(1, min(5, courses // 40 + 1))
    for f in range(1, nfw + 1):
        site.frameworks[f] = Framework(
            id=f, shortname=f"Skills framework {f}", idnumber=f"FW-{f}", description=f"<p>Framework {f}.</p>"
        )
        for s in range(8):
            cid_ = site.new_id("competency")
            name = _SKILLS[(f * 8 + s) % len(_SKILLS)]
            site.competencies[cid_] = Competency(
                id=cid_,
                frameworkid=f,
                shortname=f"{name} ({f}.{s + 1})",
                idnumber=f"FW{f}-{s + 1}",
                description=f"<p>{name}.</p>",
                sortorder=s,
            )
    comp_ids = sorted(site.competencies)
    for cid in course_ids:
        for order, comp in enumerate(rng.sample(comp_ids, rng.randint(0, min(3, len(comp_ids))))):
            ccid = site.new_id("competency_coursecomp")
            site.course_competencies[ccid] = CourseCompetency(
                id=ccid, courseid=cid, competencyid=comp, sortorder=order
            )
    return site


_EXTRA_CONTENT: Final = (
    ("resource", "slides"),
    ("h5pactivity", "interactive video"),
    ("glossary", "glossary"),
    ("folder", "handouts"),
    ("feedback", "course feedback"),
    ("bigbluebuttonbn", "live session"),
    ("scorm", "e-learning package"),
    ("book", "handbook"),
)


def _add_variety(site: Site) -> None:
    """What the connector reads beyond completion: time zones, course languages, last course accesses and
    content of more module types, hidden sections and modules among it. Derived from ids, with no draws
    from the site's random generator, so the rest of the generated site is the same with or without it."""
    for user in site.users.values():
        if user.id > 2 and user.id % 7 == 0:
            user.timezone = "Europe/Paris" if user.id % 2 else "America/New_York"
    for index, cid in enumerate(sorted(c for c in site.courses if c != 1)):
        course = site.courses[cid]
        if index % 5 == 2:
            course.lang = site.languages[index % len(site.languages)]
        kind, name = _EXTRA_CONTENT[index % len(_EXTRA_CONTENT)]
        add_module(site, course, course.numsections, kind, f"{course.fullname}: {name}")
        if index % 4 == 1:
            hidden = add_module(site, course, 1, "resource", f"{course.fullname}: draft notes")
            hidden.visible = 0
        if index % 6 == 3:
            course.numsections += 1
            course.sections.append(
                Section(
                    id=site.new_id("course_sections"),
                    section=course.numsections,
                    name="Next term (hidden)",
                    visible=0,
                )
            )
            draft = add_module(site, course, course.numsections, "page", "Next term: syllabus draft")
            draft.visible = 0
        if index % 7 == 4:  # after the course's own sections: delegated ones are numbered last
            _, inner = add_subsection(site, course, 1, "Going further")
            add_module(site, course, inner, "book", f"{course.fullname}: further reading")
    for (userid, cmid), completion in site.completions.items():
        module = site.modules[cmid]
        enrolment = site.enrolments.get((userid, module.course))
        if enrolment is not None and completion.timecompleted:
            enrolment.lastaccess = max(enrolment.lastaccess or 0, completion.timecompleted)


def fixture_site() -> Site:
    """The site recorded in ``fixtures/moodle-5`` as it was before any write fixture ran.

    Same ids, names, enrolments, completion states, grades and competencies as the recording's README
    describes, so the recorded requests can be replayed against it in recording order.
    """
    site = Site(
        sitename="Connector Reference Moodle",
        site_shortname="connref",
        site_summary="Local Moodle for recording web service fixtures",
        timezone="Europe/London",
    )
    site.next_ids["context"] = 19
    _add_base_users(site)
    people = [
        (3, "alice.martin", "Alice", "Martin", "Engineering", "London", "GB", "S1001", "E-40117"),
        (4, "bruno.silva", "Bruno", "Silva", "Engineering", "Lisbon", "PT", "S1002", "E-40221"),
        (5, "wei.chen", "Wei", "Chen", "Data", "Manchester", "GB", "S1003", "E-40309"),
        (6, "dana.okafor", "Dana", "Okafor", "Learning & Development", "London", "GB", "T2001", "E-10042"),
        (7, "erik.larsen", "Erik", "Larsen", "Operations", "Oslo", "NO", "S1004", "E-40412"),
        (8, "fatima.haddad", "Fatima", "Haddad", "Finance", "Leeds", "GB", "S1005", "E-40533"),
    ]
    for uid, username, first, last, dept, city, country, idnumber, emp in people:
        site.users[uid] = User(
            id=uid,
            username=username,
            firstname=first,
            lastname=last,
            email=f"{username}@example.com",
            idnumber=idnumber,
            department=dept,
            institution="Example Corp",
            city=city,
            country=country,
            description=html.escape(f"{first} {last} ({dept})", quote=False),
            employeeid=emp,
        )
        site.bump("user", uid)
    site.users[7].suspended = True

    site.categories[1] = Category(
        id=1, name="Category 1", idnumber=None, sortorder=10000, timemodified=SEED_TIME - 418
    )
    site.categories[2] = Category(
        id=2,
        name="Engineering",
        idnumber="ENG",
        description="<p>Technical and engineering courses.</p>",
        sortorder=20000,
    )
    site.categories[3] = Category(
        id=3,
        name="Business",
        idnumber="BUS",
        description="<p>Business and management courses.</p>",
        sortorder=30000,
    )
    site.bump("course_categories", 3)
    _add_site_course(
        site, shortname="connref", fullname="Connector Reference Moodle", summary=site.site_summary
    )

    specs = [
        (
            2,
            "PY101",
            "Introduction to Python Programming",
            2,
            20002,
            "PY101-2026A",
            "<p>Learn the fundamentals of Python: syntax, data structures, functions and testing.</p>",
            1788735600,
            1797638340,
            4,
            1,
            1,
            [
                "General",
                "Week 1: Getting started",
                "Week 2: Core syntax",
                "Week 3: Data structures",
                "Week 4: Testing",
            ],
        ),
        (
            3,
            "DS201",
            "Data Science Fundamentals",
            2,
            20001,
            "DS201-2026A",
            "<p>Exploratory data analysis, visualisation and basic statistics with pandas.</p>",
            1789340400,
            1801267140,
            4,
            1,
            1,
            ["General", "Orientation", "Exploratory data analysis", "Visualisation", "Statistics"],
        ),
        (
            4,
            "MGT110",
            "Project Management Essentials",
            3,
            30002,
            "MGT110-2026B",
            "<p>Planning, scheduling and stakeholder communication for small projects.</p>",
            1791154800,
            1797033540,
            2,
            1,
            1,
            ["General", "Planning", "Delivery"],
        ),
        (
            5,
            "LEG050",
            "Legacy Compliance Training (archived)",
            3,
            30001,
            "LEG050-2024",
            "<p>Superseded compliance course kept for records. Hidden from students.</p>",
            1704672000,
            1719615540,
            1,
            0,
            0,
            ["General", "Policy archive"],
        ),
    ]
    section_id = 1
    for cid, short, full, cat, sortorder, idnumber, summary, start, end, nsec, visible, compl, names in specs:
        course = Course(
            id=cid,
            shortname=short,
            fullname=full,
            categoryid=cat,
            idnumber=idnumber,
            summary=summary,
            visible=visible,
            startdate=start,
            enddate=end,
            numsections=nsec,
            enablecompletion=compl,
            sortorder=sortorder,
            contextid=17 + cid,
            cacherev=SEED_TIME + 16,
        )
        course.sections = []
        for i, name in enumerate(names):
            course.sections.append(Section(id=section_id, section=i, name=name))
            section_id += 1
        course.coursegradeitem = {2: 1, 3: 4}.get(cid, 0)
        course.gradecategory = {2: 1, 3: 2}.get(cid, 0)
        site.courses[cid] = course
        site.bump("course", cid)
    site.bump("course_sections", section_id - 1)
    site.bump("grade_categories", 2)
    site.next_ids["context"] = 23
    py, ds, mgt, leg = (site.courses[i] for i in (2, 3, 4, 5))
    for course, cmid in ((py, 1), (ds, 2), (mgt, 3), (leg, 4)):
        add_module(site, course, 0, "forum", "Announcements", cmid=cmid, instance=cmid)
    site.next_ids["context"] = 23
    page = add_module(site, py, 1, "page", "Course syllabus", rule="view", cmid=5, instance=1)
    site.next_ids["grade_items"] = 2
    assign = add_module(
        site,
        py,
        1,
        "assign",
        "Assignment 1: Hello, World!",
        rule="grade",
        grademax=100.0,
        gradepass=50.0,
        cmid=6,
        instance=1,
    )
    quiz = add_module(
        site, py, 2, "quiz", "Quiz 1: Python basics", rule="grade", grademax=10.0, cmid=7, instance=1
    )
    url = add_module(
        site,
        py,
        2,
        "url",
        "Official Python tutorial",
        rule="manual",
        cmid=8,
        instance=1,
        url="https://docs.python.org/3/tutorial/",
    )
    add_module(site, py, 3, "label", "Week 3 materials will be published soon.", cmid=9, instance=1)
    site.next_ids["grade_items"] = 5
    ds_page = add_module(site, ds, 1, "page", "Welcome to Data Science", rule="view", cmid=10, instance=2)
    ds_assign = add_module(
        site,
        ds,
        2,
        "assign",
        "Project: Exploratory analysis",
        rule="grade",
        grademax=100.0,
        gradepass=60.0,
        cmid=11,
        instance=2,
    )
    mgt_page = add_module(
        site, mgt, 1, "page", "Project charter template", rule="manual", cmid=12, instance=3
    )
    add_module(site, leg, 1, "page", "Legacy policy document", cmid=13, instance=4)
    site.next_ids["context"] = 36  # the real site's next context: a new course takes 36, its news forum 37
    for course in (py, ds, mgt):
        course.criteria = [m.id for m in site.tracked_modules(course.id)]

    t = SEED_TIME
    for uid, cid, role, status, start, end in (
        (3, 2, 5, 0, 0, 0),
        (4, 2, 5, 0, 0, 0),
        (5, 2, 5, 0, 0, 0),
        (7, 2, 5, 0, 0, 0),
        (6, 2, 3, 0, 0, 0),
        (3, 3, 5, 0, 0, 0),
        (5, 3, 5, 0, 0, 0),
        (4, 3, 5, 1, 0, 0),
        (6, 3, 3, 0, 0, 0),
        (3, 4, 5, 0, 0, 0),
        (4, 4, 5, 0, t - 86400, t + 400 * 86400),
        (6, 4, 4, 0, 0, 0),
        (3, 5, 5, 0, 0, 0),
    ):
        site.enrolments[(uid, cid)] = Enrolment(
            userid=uid, courseid=cid, roleid=role, status=status, timestart=start, timeend=end
        )

    site.seed_completion(3, page, 1, t)
    site.seed_grade(3, assign, 92.0, t)
    site.seed_completion(3, quiz, 1, t, overrideby=6)
    site.seed_completion(3, url, 1, t)
    site.seed_completion(4, page, 1, t + 1)
    site.seed_grade(4, assign, 41.0, t + 1)
    site.seed_completion(5, page, 1, t + 1)
    site.seed_completion(5, ds_page, 1, t + 1)
    site.seed_grade(5, ds_assign, 77.0, t + 1)
    site.seed_completion(3, ds_page, 1, t + 1)
    site.seed_completion(4, mgt_page, 1, t + 1)
    site.seed_aggregate_all()
    # Fatima was enrolled in PY101 and then deleted, which removed the enrolment.
    site.users[8].delete(t + 1)

    site.frameworks[1] = Framework(
        id=1,
        shortname="Software Development Skills",
        idnumber="SDS-2026",
        description="<p>Core skills expected of junior software developers.</p>",
        timecreated=t + 1,
    )
    for cid_, name, idn, desc, order, parent, path in (
        (1, "Python syntax and semantics", "SDS-PY", "<p>Python syntax and semantics.</p>", 0, 0, "/0/"),
        (2, "Version control with Git", "SDS-GIT", "<p>Version control with Git.</p>", 1, 0, "/0/"),
        (3, "Automated testing", "SDS-TEST", "<p>Automated testing.</p>", 2, 0, "/0/"),
        (
            4,
            "Writing unit tests with pytest",
            "SDS-TEST-PYTEST",
            "<p>Uses pytest fixtures and parametrisation.</p>",
            0,
            3,
            "/0/3/",
        ),
    ):
        site.competencies[cid_] = Competency(
            id=cid_,
            frameworkid=1,
            shortname=name,
            idnumber=idn,
            description=desc,
            sortorder=order,
            parentid=parent,
            path=path,
            timecreated=t + 1,
        )
    site.bump("competency", 4)
    for ccid, courseid, comp, order in ((1, 2, 1, 0), (2, 2, 2, 1), (3, 2, 3, 2), (4, 3, 1, 0)):
        site.course_competencies[ccid] = CourseCompetency(
            id=ccid, courseid=courseid, competencyid=comp, sortorder=order, timecreated=t + 1
        )
    site.bump("competency_coursecomp", 4)
    site.module_competencies[6] = [1]
    site.user_competencies[1] = UserCompetencyCourse(
        id=1,
        userid=3,
        courseid=2,
        competencyid=1,
        grade=2,
        proficiency=True,
        timecreated=t + 1,
        timemodified=t + 1,
    )
    site.user_competencies[2] = UserCompetencyCourse(
        id=2,
        userid=4,
        courseid=2,
        competencyid=1,
        grade=1,
        proficiency=False,
        timecreated=t + 1,
        timemodified=t + 1,
    )
    site.bump("competency_usercompcourse", 3)
    site.evidence[1] = Evidence(
        id=1,
        usercompetencyid=1,
        courseid=2,
        userid=3,
        competencyid=1,
        grade=2,
        note="Demonstrated in Assignment 1.",
        actionuserid=2,
        timecreated=t + 1,
    )
    site.evidence[2] = Evidence(
        id=2,
        usercompetencyid=2,
        courseid=2,
        userid=4,
        competencyid=1,
        grade=1,
        note="Needs more practice.",
        actionuserid=2,
        timecreated=t + 1,
    )
    site.bump("competency_evidence", 6)
    return site
