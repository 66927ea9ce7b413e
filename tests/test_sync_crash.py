"""Crash safety for real: a sync in a child process is killed with SIGKILL at random moments and run again
until it completes; the store and change log must equal those of a run that was never interrupted. On
both engines: a SQLite file, and a PostgreSQL schema on the test server.

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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve()
CONNECTION = "crash-test"
BATCH = 25
# PostgreSQL cannot see that the killed holder's process is gone (it may be on another host): the next
# sync takes over when the lease ends. A short lease keeps the test short; the harness waits it out.
PG_LEASE_S = 2.0
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

    postgres = db.startswith("postgresql://")
    async with open_store(db) as store:
        print("ready", flush=True)
        lms = lmsconnect.connect("toylms", **config, calls_per_second=10_000)
        lease = {"lease_s": PG_LEASE_S, "wait": 3 * PG_LEASE_S} if postgres else {}
        await sync(lms, store, connection=CONNECTION, batch_size=BATCH, **lease)  # type: ignore[arg-type]
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


def _start(db: str, config: dict[str, Any]) -> subprocess.Popen[str]:
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


def _query(db: str, *statements: str, check: bool = False) -> list[list[tuple[Any, ...]]]:
    """Each statement's rows, read behind the store's back (a SQLite file, or a PostgreSQL schema)."""
    if db.startswith("postgresql://"):
        import psycopg

        url, _, schema = db.rpartition("?schema=")
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(f'SET search_path TO "{schema}"')
            return [pg.execute(sql).fetchall() for sql in statements]
    if not Path(db).exists():
        return [[] for _ in statements]
    with sqlite3.connect(db) as conn:
        if check:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        out = [conn.execute(sql).fetchall() for sql in statements]
    conn.close()
    return out


def _snapshot(db: str) -> dict[str, Any]:
    """The store's content minus what legitimately differs (timestamps, cursors, run ids)."""
    changes, records, runs, locks = _query(
        db,
        "SELECT model, kind, record_id FROM changes ORDER BY cursor",
        "SELECT model, id, fingerprint, data, remote_deleted_at IS NOT NULL FROM records ORDER BY model, id",
        "SELECT status FROM runs ORDER BY run_id",
        "SELECT COUNT(*) FROM locks",
        check=True,
    )
    per_model: dict[str, list[tuple[str, str]]] = {}
    for model, kind, rid in changes:
        per_model.setdefault(model, []).append((kind, rid))
    return {
        "changes": per_model,
        "records": [tuple(r) for r in records],
        "open_runs": [r for r in runs if r[0] != "complete"],
        "locks": locks[0][0],
    }


def _interrupted(db: str) -> tuple[bool, bool]:
    """(a run was left open, and it had already committed some changes) after a kill."""
    try:
        running, written = _query(
            db,
            "SELECT run_id FROM runs WHERE status = 'running'",
            "SELECT COUNT(*) FROM changes WHERE run_id IN (SELECT run_id FROM runs WHERE status = 'running')",
        )
    except Exception as exc:  # killed before it created its tables: nothing was open
        if "does not exist" in str(exc) or "no such table" in str(exc):
            return False, False
        raise
    return bool(running), written[0][0] > 0


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_sigkill_at_random_points_then_resume_gives_the_clean_change_log(
    tenants: dict[str, dict[str, Any]], tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    """Over many SIGKILL points in both a first and an incremental sync, resumed runs end with exactly
    the store and the change log of an uninterrupted run: nothing lost, nothing recorded twice."""
    postgres = engine == "postgres"
    if postgres:
        url: str = request.getfixturevalue("postgres_url")
        prefix = f"crash_{uuid.uuid4().hex[:8]}"

        def locate(name: str) -> str:
            return f"{url}?schema={prefix}_{name}"
    else:

        def locate(name: str) -> str:
            return str(tmp_path / f"{name}.db")

    clean_db = locate("clean")
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
    # Up to 24 kills in `budget` seconds, and past it until at least `want` (a loaded machine is slower),
    # within a hard limit against a hang. Each PostgreSQL kill also costs the lease it leaves behind.
    want, budget = (12, 60) if postgres else (15, 40)
    started = time.monotonic()

    def enough() -> bool:
        # Most kills must land inside a run, and many after it had committed part of its changes. Under
        # load a sync starts later than the clean timing says, so more kills land before the run opens:
        # keep going until there are enough of each kind, not just enough kills.
        return kills >= want and open_run >= want // 2 and mid_write >= want // 4

    def more() -> bool:
        elapsed = time.monotonic() - started
        return elapsed < 240 and (not enough() or (kills < 24 and elapsed < budget))

    while more():
        trial += 1
        db = locate(f"crash{trial}")
        for phase in ("a", "b"):
            # Up to two kills per phase; then let it complete.
            for _ in range(rng.choice((1, 1, 2))):
                proc = _start(db, tenants[phase])
                if not _kill_at(proc, rng.uniform(0.0, durations[phase] * 1.1)):
                    break
                kills += 1
                if postgres:
                    time.sleep(PG_LEASE_S)  # the killed holder's lease runs out; the next sync takes over
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
    assert enough(), f"in 240 s: {kills} kills, {open_run} inside a run, {mid_write} after a commit"


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(_serve())
    else:
        asyncio.run(_sync(sys.argv[2], json.loads(sys.argv[3])))
