"""The main job (``lmsconnect demo``): every installed connector against its bundled simulator.

For each connector: start its simulator on 127.0.0.1, sync everything into the SQLite store, perform the
actions its capability table supports (showing each quirk as it happens), sync again and print the change
feed that resulted. Nothing here knows a connector by name: what happens follows from the tables.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TextIO

from ._actions import ActionResult, ItemStatus
from ._capabilities import matrix_rows
from ._cli import table
from ._connector import Connector
from ._errors import ActionFailed, LMSConnectError
from ._models import CourseProgression, CourseRevision, ProgressionStatus, User
from ._registry import registry
from ._store import open_store
from ._sync import SyncReport, sync
from .testing import load_simulator

SIM_SIZE = {"users": 30, "courses": 6, "enrollments": 60, "seed": 7}


class _Out:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, text: str = "", indent: int = 0) -> None:
        pad = " " * indent
        for line in text.splitlines() or [""]:
            self.out.write(pad + line + "\n")
        self.out.flush()

    def head(self, text: str) -> None:
        self(f"\n== {text} " + "=" * max(0, 76 - len(text)))


def _item_line(item: Any) -> str:
    text = f"{item.status.value}"
    if item.error:
        text += f" [{item.error.code}] {item.error.message}"
    if item.detail:
        text += f" — {item.detail}"
    return text


def _sync_line(report: SyncReport) -> str:
    return report.summary_table().rstrip()


def _fresh_db(db: str) -> None:
    """Start the demo from an empty store, so its change feed shows only this run."""
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(db + suffix).unlink(missing_ok=True)


async def run_demo(*, db: str, out: TextIO) -> int:
    say = _Out(out)
    _fresh_db(db)
    classes = [c for c in registry.loaded() if c.spec.simulator]
    if not classes:
        say("No connector with a simulator is installed: pip install lmsconnect-talentlms (or another).")
        return 1
    say(f"lmsconnect demo: {len(classes)} connector(s) against their bundled simulators on 127.0.0.1")
    say(f"state store: {db} (SQLite)")
    say.head("What each connector can do (capability matrix)")
    header, rows = matrix_rows([c.capabilities for c in classes])
    say(table(rows, header))
    failures = 0
    async with open_store(db) as store:
        for cls in classes:
            try:
                await _one(cls, store, say)
            except LMSConnectError as exc:
                failures += 1
                say(f"!! {cls.spec.slug}: the demo stopped on an unexpected error: {exc}", 2)
    say.head("Done")
    say(f"The store {db} now holds every record with changed_at / remote_deleted_at;")
    say(f"read the feed again with: {command_name()} changes --db {db}")
    return 1 if failures else 0


def command_name() -> str:
    """How to run ``lmsconnect`` from here: the bare name when it is on the PATH, else the script's path."""
    script = Path(sys.executable).parent / "lmsconnect"
    if shutil.which("lmsconnect") or not script.exists():
        return "lmsconnect"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


async def _one(cls: type[Connector[Any]], store: Any, say: _Out) -> None:
    caps = cls.capabilities
    simulator = load_simulator(cls.spec.slug)
    sim = simulator(**{**SIM_SIZE, **getattr(simulator, "demo_options", {})})
    await sim.start("127.0.0.1", 0)
    try:
        say.head(f"{caps.name} ({caps.slug}) — simulator at {sim.url}")
        from ._api import connect

        async with connect(cls.spec.slug, **sim.connect_config) as lms:
            say("1. Full sync into the store")
            say(_sync_line(await sync(lms, store)), 3)
            say("2. Create a course, enrol learners, complete — as the capability table describes")
            cursor = await store.last_cursor()
            course_id = await _create_and_enrol(lms, say)
            say("3. Sync again; the change feed shows what those actions did")
            await _sync_and_feed(lms, store, say, cursor)
            # This connection's table: for a connector with modes, the mode it found.
            caps = await lms.resolve_capabilities()
            if course_id and caps.actions["deactivate_course"].supported:
                cap = caps.actions["deactivate_course"]
                flags = ", ".join(sorted(f.value for f in cap.flags)) or "not destructive"
                mode = f", this connection's mode {caps.mode}" if caps.mode else ""
                say(f"4. Deactivate the new course ({flags}{mode})")
                say(cap.note, 3)
                for name, other in cls.capabilities.modes.items():
                    if name != caps.mode and other.actions["deactivate_course"] != cap:
                        shown = ", ".join(sorted(f.value for f in other.actions["deactivate_course"].flags))
                        say(f"(in mode {name}: {shown or 'no flags'})", 3)
                if cap.destructive:
                    async with connect(cls.spec.slug, allow_destructive=False, **sim.connect_config) as safe:
                        # What this connection would really do (a connector with modes finds out first).
                        before = (await safe.resolve_capabilities(), safe.stats.calls)[1]
                        try:
                            await safe.deactivate_course(course_id=course_id)
                        except LMSConnectError as exc:
                            say(f"on a connection opened with allow_destructive=False -> "
                                f"{type(exc).__name__} ({safe.stats.calls - before} API calls)", 6)
                cursor = await store.last_cursor()
                result = await lms.deactivate_course(course_id=course_id)
                say(f"-> {_item_line(result.items[0])}", 6)
                if result.items[0].status is ItemStatus.ACCEPTED:
                    result = await lms.wait_until_visible(result, timeout_s=60)
                    say(f"waited for the vendor -> {_item_line(result.items[0])}", 6)
                say("5. Sync again; the change feed shows the deactivation as this LMS does it")
                await _sync_and_feed(lms, store, say, cursor)
            say(f"{lms.stats.calls} API calls in all, {lms.stats.rejected} rejected by rate limits", 3)
    finally:
        await sim.stop()


async def _sync_and_feed(lms: Connector[Any], store: Any, say: _Out, cursor: int) -> None:
    report = await sync(lms, store)
    totals = ", ".join(f"{n} {kind}" for kind, n in report.totals.items())
    unchanged = sum(m.unchanged for m in report.models.values())
    say(f"sync: {totals}, {unchanged} unchanged ({report.calls} API calls, {report.duration_s:.2f} s)", 3)
    rows = []
    async for change in store.changes(since=cursor):
        record = await store.get(change.model, change.id)
        deleted = "" if record is None or record.remote_deleted_at is None else " (remote_deleted_at set)"
        rows.append([change.cursor, change.kind, change.model, _label(record) + deleted])
    say("change feed since the previous sync:", 3)
    say(table(rows, ["cursor", "change", "model", "record"]) if rows else "(no changes)", 3)


def _label(record: Any) -> str:
    """A human name for a record in the feed (ids are long and opaque)."""
    if record is None:
        return "?"
    for attr in ("title", "name", "work_email"):
        value = getattr(record, attr, None)
        if value:
            status = getattr(record, "status", None)
            return f"{value}" + (f" [{status}]" if status is not None else "")
    if getattr(record, "user_id", None):
        return f"progression {record.remote_id} [{record.status}]"
    return f"{type(record).__name__} {record.remote_id}"


async def _create_and_enrol(lms: Connector[Any], say: _Out) -> str | None:
    """Upsert a course (twice), enrol learners in it, complete; return the new course's id."""
    caps = lms.capabilities
    users = [u async for u in lms.list(User)]
    course_id = revision_id = None

    if caps.actions["upsert_courses"].supported:
        cap = caps.actions["upsert_courses"]
        origin = f"demo-{uuid.uuid4().hex[:6]}"
        course = {"title": "Safety basics (lmsconnect demo)", "description": "Made by the demo",
                  "duration": 1441, "course_url": "https://content.example/safety",
                  "thumbnail_url": "https://content.example/safety.png", "languages": ["en"]}
        course = {k: v for k, v in course.items()
                  if cap.field(f"items.course.{k}").support.value != "unsupported"}
        say(f"upsert_courses origin_id={origin} duration=1441 min", 3)
        result = await lms.upsert_courses({"items": [{"origin_id": origin, "course": course}]})
        item = result.items[0]
        say(f"-> {_item_line(item)}", 6)
        again = await lms.upsert_courses({"items": [{"origin_id": origin, "course": course}]})
        say(f"same upsert again -> {_item_line(again.items[0])} (no second course)", 6)
        course_id = item.id
        if course_id:
            revision_id = await _revision_of(lms, course_id)

    progression_id = None
    if caps.actions["enroll_user"].supported and revision_id:
        cap = caps.actions["enroll_user"]
        flags = ", ".join(sorted(f.value for f in cap.flags)) or "no flags"
        say(f"enroll_user ({flags})", 3)
        learner_done = rollback_shown = False
        for user in users[:12]:
            if learner_done and (rollback_shown or not cap.rollback):
                break
            name = f"{user.first_name} {user.last_name}"
            try:
                result = await lms.enroll_user(user_id=user.id, course_revision_id=revision_id)
            except ActionFailed as exc:
                if not rollback_shown:
                    error = exc.result.items[0].error if exc.result.items else None
                    say(f"{name} -> failed [{error.code if error else exc.code}]: {exc.message}", 6)
                    rollback_shown = True
                continue
            if learner_done:
                continue
            learner_done = True
            item = result.items[0]
            say(f"{name} -> {_item_line(item)}", 6)
            if item.status is ItemStatus.ACCEPTED:
                result = await lms.wait_until_visible(result, timeout_s=60)
                item = result.items[0]
                say(f"waited for the vendor -> {_item_line(item)}", 6)
            progression_id = item.id

    if caps.actions["complete_course"].supported:
        flags = ", ".join(sorted(f.value for f in caps.actions["complete_course"].flags)) or "no flags"
        say(f"complete_course ({flags})", 3)
        if progression_id:
            await _complete(lms, say, progression_id, "the new enrolment")
        # Seeded enrolments may not be completable (a course without completion criteria, or outside
        # the integration): try a few, and show the first outcome that worked or else the last refusal.
        candidates = [p.id async for p in lms.list(CourseProgression)
                      if p.id != progression_id
                      and p.status in (ProgressionStatus.ENROLLED, ProgressionStatus.IN_PROGRESS)]
        for index, candidate in enumerate(candidates[:3]):
            last = index == min(len(candidates), 3) - 1
            if await _complete(lms, say, candidate, "a seeded in-progress enrolment", quiet=not last):
                break
    else:
        try:
            await lms.complete_course(course_progression_id="remote:1")
        except LMSConnectError as exc:
            say(f"complete_course -> {type(exc).__name__}: {exc.message}", 3)
    return course_id


async def _complete(
    lms: Connector[Any], say: _Out, progression_id: str, what: str, *, quiet: bool = False
) -> bool:
    """Complete with score 85; say what happened (a refusal only unless `quiet`)."""
    started = time.monotonic()
    try:
        result: ActionResult = await lms.complete_course(
            course_progression_id=progression_id, score=85,
            completed_at=dt.datetime.now(dt.timezone.utc),
        )
    except LMSConnectError as exc:
        if not quiet:
            say(f"{what}, score 85 -> {type(exc).__name__} [{exc.code}]: {exc.message}", 6)
        return False
    item = result.items[0]
    say(f"{what}, score 85 -> {_item_line(item)}", 6)
    if item.status is ItemStatus.ACCEPTED:
        waited = await lms.wait_until_visible(result, timeout_s=60)
        say(f"waited {time.monotonic() - started:.1f} s -> {_item_line(waited.items[0])}", 6)
    return item.ok


async def _revision_of(lms: Connector[Any], course_id: str) -> str | None:
    async for revision in lms.list(CourseRevision):
        if revision.course_id == course_id:
            return revision.id
    return None
