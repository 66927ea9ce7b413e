"""What a Moodle sync can tell about its progress: lists whose length is known once read, and counts of
the per-course calls (or report pages) a read makes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lmsconnect_moodle.testing import MoodleSimulator

import lmsconnect
from lmsconnect import SyncProgress


async def last_events(sim: MoodleSimulator, tmp_path: Path, **config: Any) -> dict[str, SyncProgress]:
    events: list[SyncProgress] = []
    lms = lmsconnect.connect("moodle", **sim.connect_config, **config)
    async with lmsconnect.open_store(str(tmp_path / "s.sqlite")) as store:
        report = await lmsconnect.sync(lms, store, progress=events.append)
    assert report.ok
    return {e.model: e for e in events}


class TestTotals:
    async def test_one_call_lists_and_per_course_reads(self, tmp_path: Path) -> None:
        """Users, courses and revisions come from one list each, so their totals are exact; revision
        skills and progressions count their per-course listings; skills stay unknown."""
        async with MoodleSimulator(users=30, courses=7, enrollments=60, seed=2) as sim:
            last = await last_events(sim, tmp_path)
            hidden = sum(1 for c in sim.site.courses.values() if not c.visible and c.id != 1)
        assert last["users"].total == last["users"].read
        assert last["courses"].total == last["course_revisions"].total == last["courses"].read == 7
        assert (last["revision_skills"].pages_done, last["revision_skills"].pages_total) == (7, 7)
        listings = 7 + hidden  # a hidden course is listed twice (active and suspended enrolments)
        progressions = last["course_progressions"]
        assert (progressions.pages_done, progressions.pages_total) == (listings, listings)
        assert last["skills"].total is None and last["skills"].pages_total is None

    async def test_deleted_users_leave_the_total_unknown(self, tmp_path: Path) -> None:
        """With include_deleted_users the deleted accounts are found only by looking: no total is given."""
        async with MoodleSimulator(users=12, courses=2, enrollments=10, seed=2) as sim:
            last = await last_events(sim, tmp_path, include_deleted_users=True)
        assert last["users"].total is None and last["users"].status == "complete"

    async def test_report_pages_are_counted(self, tmp_path: Path) -> None:
        """Progressions read from a custom report count its pages, from the row count it announces."""
        async with MoodleSimulator(users=40, courses=6, enrollments=150, seed=4) as sim:
            sim.add_report()
            last = await last_events(sim, tmp_path, progressions_via_report="lmsconnect progressions",
                                     report_page_size=20)
            rows = len(sim.site.enrolments) + 2 * 6
        pages = math.ceil(rows / 20)
        progressions = last["course_progressions"]
        assert (progressions.pages_done, progressions.pages_total) == (pages, pages)
