"""The main job (README's first command) runs end to end and shows each quirk happening."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lmsconnect._cli import main
from lmsconnect._registry import registry


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = io.StringIO()
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    assert main(["demo", "--db", str(db)], out=out) == 0, out.getvalue()
    assert Path(db).exists()
    return out.getvalue()


def installed(slug: str) -> bool:
    return slug in {i.slug for i in registry.infos() if i.ok}


def test_every_connector_is_synced_and_acted_on(output: str) -> None:
    """Each installed connector gets its section, a full sync, actions and a change feed."""
    for info in registry.infos():
        if info.ok and registry.get(info.slug).spec.simulator:
            assert f"({info.slug}) — simulator at http://127.0.0.1:" in output
    assert output.count("change feed since the previous sync:") >= 2
    assert "Traceback" not in output


def test_talentlms_quirks_show(output: str) -> None:
    """Days rounding, trainer rollback, and (with API v2, the simulator's default) a reversible
    deactivation, waited for, with the v1 mode's destructive one named beside it."""
    if not installed("talentlms"):
        pytest.skip("talentlms not installed")
    section = output.split("(talentlms) — simulator")[1].split("\n== ")[0]
    assert "time_limit 2 day(s)" in section
    assert "LMS.ENROLLED_AS_TRAINER" in section
    assert "(asynchronous, this connection's mode v2)" in section
    assert "(in mode v1: destructive)" in section
    assert "waited for the vendor -> updated" in section
    assert "deleted  courses" not in section


def test_hidden_and_archived_courses_become_inactive_revisions(output: str) -> None:
    """Moodle hides, 360Learning archives, TalentLMS (API v2) deactivates: the next sync records the revision
    as INACTIVE."""
    for slug in ("moodle", "360learning", "talentlms"):
        if not installed(slug):
            continue
        section = output.split(f"({slug}) — simulator")[1].split("\n== ")[0]
        assert "updated  course_revisions  Safety basics (lmsconnect demo) [INACTIVE]" in section


def test_asynchronous_enrollment_is_accepted_then_visible(output: str) -> None:
    """360Learning answers `accepted`, and waiting shows when it became visible."""
    if not installed("360learning"):
        pytest.skip("360learning not installed")
    section = output.split("(360learning) — simulator")[1].split("\n== ")[0]
    assert "-> accepted" in section
    assert "waited for the vendor -> created" in section


def test_moodle_graded_completion_is_accepted_then_visible(output: str) -> None:
    """Moodle's completion cron aggregates a graded completion: `accepted`, then complete after the wait."""
    if not installed("moodle"):
        pytest.skip("moodle not installed")
    section = output.split("(moodle) — simulator")[1].split("\n== ")[0]
    assert "score 85 -> accepted" in section
    assert "-> updated — Moodle now reports the course complete" in section
