"""Crash safety for real: a sync in a child process is killed with SIGKILL at random moments and run again
until it completes; the store and change log must equal those of a run that was never interrupted.

The simulators run in another process (this file doubles as its script: ``serve`` and ``sync`` modes), so
a kill hits the sync alone, at any point: mid-request, mid-transaction, between a model's last batch and
its deletions, after the run closed but before the process exited.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve()
CONNECTION = "crash-test"
BATCH = 25
SIZES = {"users": 400, "courses": 30, "enrollments": 1200, "seed": 11}


# -- the child processes -------------------------------------------------------------------------------


def _mutate(sim: Any) -> None:
    """Tenant B = tenant A after a day of activity: edits, removals, arrivals, enrolments, completions."""
    rng = random.Random(99)
    users = sorted(sim.users)
    for u in rng.sample(users, 12):
        del sim.users[u]
    for u in rng.sample(sorted(sim.users), 12):
        sim.users[u]["last"] = sim.users[u]["last"] + "-edited"
    for n in range(8):
        new = max(sim.users) + 1
        sim.users[new] = {
            "id": new,
            "first": f"New{n}",
            "last": "Hire",
            "email": f"new{n}@toy.example",
            "active": True,
        }
    gone = sorted(sim.courses)[3]
    del sim.courses[gone]
    for key in [k for k in sim.enrollments if k[0] == gone]:
        del sim.enrollments[key]
    for key in rng.sample(sorted(sim.enrollments), 20):
        sim.enrollments[key]["done"] = 1_720_000_000
    for key in rng.sample(sorted(sim.enrollments), 10):
        del sim.enrollments[key]
    for _ in range(15):
        c, u = rng.choice(sorted(sim.courses)), rng.choice(sorted(sim.users))
        sim.enrollments.setdefault((c, u), {"course": c, "user": u, "done": 0})
    sim.courses[sorted(sim.courses)[0]]["title"] = "Renamed course"


async def _serve() -> None:
    from lmsconnect_toylms.testing import ToySimulator

    a = ToySimulator(**SIZES, latency=0.002)
    b = ToySimulator(**SIZES, latency=0.002)
    _mutate(b)
    async with a, b:
        print(json.dumps({"a": a.connect_config, "b": b.connect_config}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def _sync(db: str, config: dict[str, Any]) -> None:
    import lmsconnect
    from lmsconnect._store import open_store
    from lmsconnect._sync import sync

    async with open_store(db) as store:
        print("ready", flush=True)
        lms = lmsconnect.connect("toylms", **config, calls_per_second=10_000)
        await sync(lms, store, connection=CONNECTION, batch_size=BATCH)
    print("done", flush=True)


# -- the harness --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenants() -> Iterator[dict[str, dict[str, Any]]]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the simulator process did not start"
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _start(db: Path, config: dict[str, Any]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "sync", str(db), json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    return proc


def _finish(proc: subprocess.Popen[str]) -> float:
    """Let the child complete; the seconds from "ready" to its sync's end (interpreter exit excluded)."""
    started = time.monotonic()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    took = time.monotonic() - started
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and line.strip() == "done", err
    return took


def _kill_at(proc: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL the child after `delay` s; False if it had already finished (then it must have succeeded)."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        return True
    out, err = proc.communicate()
    assert proc.returncode == 0 and "done" in out, err
    return False


def _snapshot(db: Path) -> dict[str, Any]:
    """The store's content minus what legitimately differs (timestamps, cursors, run ids)."""
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_model: dict[str, list[tuple[str, str]]] = {}
        for model, kind, rid in conn.execute("SELECT model, kind, record_id FROM changes ORDER BY cursor"):
            per_model.setdefault(model, []).append((kind, rid))
        records = conn.execute(
            "SELECT model, id, fingerprint, data, remote_deleted_at IS NOT NULL FROM records"
            " ORDER BY model, id"
        ).fetchall()
        runs = conn.execute("SELECT status FROM runs ORDER BY run_id").fetchall()
        locks = conn.execute("SELECT COUNT(*) FROM locks").fetchone()[0]
    conn.close()
    return {
        "changes": per_model,
        "records": records,
        "open_runs": [r for r in runs if r[0] != "complete"],
        "locks": locks,
    }


def _interrupted(db: Path) -> tuple[bool, bool]:
    """(a run was left open, and it had already committed some changes) after a kill."""
    if not db.exists():
        return False, False
    with sqlite3.connect(db) as conn:
        running = conn.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()
        written = conn.execute(
            "SELECT COUNT(*) FROM changes WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'running')"
        ).fetchone()[0]
    conn.close()
    return bool(running), written > 0


def test_sigkill_at_random_points_then_resume_gives_the_clean_change_log(
    tenants: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Over many SIGKILL points in both a first and an incremental sync, resumed runs end with exactly
    the store and the change log of an uninterrupted run: nothing lost, nothing recorded twice."""
    clean_db = tmp_path / "clean.db"
    durations = {}
    for phase in ("a", "b"):
        durations[phase] = _finish(_start(clean_db, tenants[phase]))
    clean = _snapshot(clean_db)
    assert clean["open_runs"] == [] and clean["locks"] == 0
    kinds = {k for log in clean["changes"].values() for k, _ in log}
    assert kinds == {"created", "updated", "deleted"}

    rng = random.Random(2024)
    kills = open_run = mid_write = 0
    trial = 0
    # 40 s is enough for 24 kills on an idle machine; a loaded one goes on (up to 4 minutes) until the
    # 15 kills the test needs, rather than failing for lack of time.
    started = time.monotonic()

    def more() -> bool:
        spent = time.monotonic() - started
        return kills < 24 and (spent < 40 or (kills < 15 and spent < 240))

    while more():
        trial += 1
        db = tmp_path / f"crash{trial}.db"
        for phase in ("a", "b"):
            # Up to two kills per phase; then let it complete.
            for _ in range(rng.choice((1, 1, 2))):
                proc = _start(db, tenants[phase])
                if not _kill_at(proc, rng.uniform(0.0, durations[phase] * 1.1)):
                    break
                kills += 1
                was_open, had_written = _interrupted(db)
                open_run += was_open
                mid_write += had_written
            else:
                _finish(_start(db, tenants[phase]))
        got = _snapshot(db)
        assert got["open_runs"] == [] and got["locks"] == 0
        assert got["changes"] == clean["changes"], f"trial {trial}: change log differs from the clean run"
        assert got["records"] == clean["records"], f"trial {trial}: stored records differ"
    print(
        f"clean runs {durations}; {trial} trials, {kills} SIGKILLs: {open_run} left a run open, "
        f"{mid_write} after it had committed changes"
    )
    assert kills >= 15, f"only {kills} kill points in the time budget"
    # Most kills must land inside a run, and many after it had committed part of its changes.
    assert open_run >= kills // 2 and mid_write >= kills // 4, (kills, open_run, mid_write)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(_serve())
    else:
        asyncio.run(_sync(sys.argv[2], json.loads(sys.argv[3])))
