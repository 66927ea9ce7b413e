"""progressions_via_report against a real Moodle 5.0.6+ (../shared/real-moodle): the report an administrator
sets up, made with Moodle's own PHP API, gives what the default read gives.

Skips without the real-moodle package, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import lmsconnect
from lmsconnect import ConfigurationError, CourseProgression, ProgressionStatus

SETUP = Path(__file__).resolve().parent / "progressions_report.php"
PHP = os.environ.get("MOODLE_PHP", "/usr/bin/php8.2")
pytestmark = pytest.mark.xdist_group("real_moodle")


def setup_report(site: Any, *args: str) -> int:
    """The administrator's one-time setup (docs/moodle-setup.md), through Moodle's PHP API."""
    done = subprocess.run(
        [PHP, "-d", "memory_limit=512M", str(SETUP), f"--moodle={site.workdir}/moodle", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the report setup failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(json.loads(done.stdout.splitlines()[-1])["reportid"])


async def read(site: Any, **config: Any) -> tuple[dict[str, CourseProgression], int]:
    async with lmsconnect.connect("moodle", **site.connect_config, **config) as lms:
        found = {p.remote_id: p async for p in lms.list(CourseProgression)}
        return found, lms.stats.calls


def minute(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(second=0, microsecond=0) if value is not None else None


async def test_report_gives_the_default_reads_progressions(fresh_moodle: Any) -> None:
    """On the real site the report path gives the same progressions, statuses and completion minutes."""
    setup_report(fresh_moodle, "--timezone=Europe/London")
    default, default_calls = await read(fresh_moodle)
    report, report_calls = await read(
        fresh_moodle, progressions_via_report="lmsconnect progressions", report_timezone="Europe/London"
    )
    assert report.keys() == default.keys()
    assert len(report) >= 10
    for key, expected in default.items():
        assert report[key].status is expected.status, key
        assert minute(report[key].completed_at) == minute(expected.completed_at), key
        assert report[key].enrolled_at is not None, key
    statuses = {p.status for p in report.values()}
    assert {ProgressionStatus.COMPLETED, ProgressionStatus.DROPPED, ProgressionStatus.IN_PROGRESS} <= statuses
    assert report_calls == 2 < default_calls


async def test_a_report_in_the_wrong_shape_is_refused(fresh_moodle: Any) -> None:
    """A real report with two columns swapped is refused, saying to reorder them."""
    reportid = setup_report(fresh_moodle, "--name=lmsconnect swapped", "--layout=wrong-order")
    with pytest.raises(ConfigurationError, match="reorder them"):
        await read(fresh_moodle, progressions_via_report=str(reportid))
