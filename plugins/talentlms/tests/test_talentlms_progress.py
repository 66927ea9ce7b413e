"""What a TalentLMS sync can tell about its progress: the totals TalentLMS gives, and its budget waits."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

from lmsconnect_talentlms.testing import TalentLMSSimulator

import lmsconnect
from lmsconnect import SyncProgress

CLI = [sys.executable, "-m", "lmsconnect"]


async def synced(
    sim: TalentLMSSimulator, tmp_path: Path, *, watch: bool, page_size: int
) -> list[SyncProgress]:
    events: list[SyncProgress] = []
    lms = lmsconnect.connect("talentlms", **sim.connect_config, page_size=page_size)
    async with lmsconnect.open_store(str(tmp_path / f"{watch}-{page_size}.sqlite")) as store:
        # Batches of 10: progress is told after each, so the users' pages show on their way.
        report = await lmsconnect.sync(lms, store, progress=events.append if watch else None, batch_size=10)
    assert report.ok
    return events


class TestTotals:
    async def test_users_total_comes_from_siteinfo_and_courses_from_their_list(self, tmp_path: Path) -> None:
        """Watched, a users read of several pages learns the total from /v1/siteinfo (one call); courses
        and revisions are counted from their one list; progressions count one detail call per course."""
        async with TalentLMSSimulator(users=40, courses=6, enrollments=90, seed=5) as sim:
            events = await synced(sim, tmp_path, watch=True, page_size=15)
            assert sim.calls_by_route["GET /v1/siteinfo"] == 1
        last = {e.model: e for e in events}
        assert last["users"].total == last["users"].read == 40
        assert any(e.model == "users" and e.status == "reading" and e.total == 40 and e.read < 40
                   for e in events)
        assert (last["courses"].total, last["course_revisions"].total) == (6, 6)
        progressions = last["course_progressions"]
        assert progressions.total is None and (progressions.pages_done, progressions.pages_total) == (6, 6)

    async def test_no_extra_call_when_nobody_watches_or_one_page_holds_all(self, tmp_path: Path) -> None:
        """The siteinfo call is spent only for a watched sync whose users take more than one page."""
        async with TalentLMSSimulator(users=40, courses=2, enrollments=10, seed=5) as sim:
            await synced(sim, tmp_path, watch=False, page_size=15)
            events = await synced(sim, tmp_path, watch=True, page_size=500)
            assert sim.calls_by_route["GET /v1/siteinfo"] == 0
        assert [e.total for e in events if e.model == "users" and e.status == "complete"] == [None]


class TestBudgetWaits:
    async def test_piped_sync_says_it_waits_for_the_budget_and_until_when(self, tmp_path: Path) -> None:
        """With the plan's hourly budget spent, the piped CLI says which models wait and until when."""
        window = 9.0
        async with TalentLMSSimulator(users=60, courses=12, enrollments=100, hourly_limit=8,
                                      hourly_window=window) as sim:
            creds = tmp_path / "creds.json"
            creds.write_text(json.dumps({"config": sim.connect_config}))
            started = dt.datetime.now().astimezone()
            proc = await asyncio.create_subprocess_exec(
                *CLI, "sync", "talentlms", "--config-json", f"@{creds}", "--db", str(tmp_path / "s.sqlite"),
                "--progress-every", "1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"},
            )
            out, err = await asyncio.wait_for(proc.communicate(), 120)
            assert sim.rejected_calls == 0
        text = out.decode()
        assert proc.returncode == 0, err.decode()
        waits = re.findall(r"^(\S+) .*waiting for rate budget until (\d\d:\d\d:\d\d)$", text, re.M)
        assert waits, text
        for _, shown in waits:
            until = dt.datetime.combine(started.date(), dt.time.fromisoformat(shown), started.tzinfo)
            ahead = (until - started).total_seconds() % 86_400  # a run across midnight
            assert 0 < ahead <= window + 5, (shown, started)
        assert any(line.startswith("[") and "waiting for rate budget" in line for line in text.splitlines())
        assert re.search(r"^users +complete .* in \d", text, re.M), text
