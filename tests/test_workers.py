"""lmsconnect.workers against a real PostgreSQL (started by the tests) and the TalentLMS simulator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip("procrastinate")
psycopg = pytest.importorskip("psycopg")

from lmsconnect_talentlms.testing import TalentLMSSimulator  # noqa: E402

import lmsconnect  # noqa: E402
from lmsconnect import HttpOptions  # noqa: E402
from lmsconnect.workers import AlreadyQueued, Workers  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "scale_service.py"
SECRET = "sk-live-7f3c9a1e5d2b4f60-DO-NOT-LEAK"
FAST_HTTP = HttpOptions(max_attempts=1)
# The worker also runs the periodic fan-out task: tests look at the sync jobs.
SYNCS = "task_name = 'lmsconnect.sync_connection'"


@pytest.fixture
def db(postgres_url: str) -> str:
    """A URL with a fresh schema: lmsconnect's tables and procrastinate's go there."""
    return f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema=w_{uuid.uuid4().hex[:12]}"


def sql(db: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    url, _, schema = db.rpartition("schema=")
    with psycopg.connect(url.rstrip("?&"), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cur = conn.execute(query.encode(), params or None)
        return cur.fetchall() if cur.description else []


@pytest.fixture
async def sim() -> AsyncIterator[TalentLMSSimulator]:
    async with TalentLMSSimulator(api_key=SECRET, hourly_limit=100_000) as server:
        yield server


def resolver(sim: TalentLMSSimulator, **extra: Any) -> Any:
    def resolve(key: str) -> tuple[str, dict[str, Any]]:
        return "talentlms", {**sim.connect_config, **extra}

    return resolve


async def signal_when(
    argv: list[str], env: dict[str, str], log: Path, db: str, ready: str, how: signal.Signals
) -> int:
    """Start a worker process (output to `log`), send it `how` once the query `ready` returns a row,
    and return its exit code; it is killed if the test fails first. A plain Popen: the test polls it
    while its own event loop serves the simulator."""
    with open(log, "w") as log_file:  # noqa: ASYNC230
        proc = subprocess.Popen(argv, env=env, stdout=log_file, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        deadline = time.monotonic() + 30
        while not sql(db, ready):
            assert time.monotonic() < deadline, log.read_text()[-3000:]  # noqa: ASYNC240
            await asyncio.sleep(0.05)
        proc.send_signal(how)
        while proc.poll() is None:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode


async def snapshot(store: Any, key: str) -> dict[str, list[Any]]:
    """Every stored record of `key`, per model, without the times of our own observation."""
    out: dict[str, list[Any]] = {}
    for model in ("users", "courses", "course_revisions", "course_progressions"):
        rows = []
        async for record in store.list(model, connection=key):
            rows.append(repr(attrs.evolve(record, changed_at=None)))
        out[model] = sorted(rows)
    return out


class TestQueueing:
    async def test_a_second_queued_sync_of_one_connection_is_refused(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """While one sync of a connection waits, deferring another raises AlreadyQueued; others are free."""
        async with Workers(db, resolve=resolver(sim)) as workers:
            first = await workers.defer_sync("acme")
            with pytest.raises(AlreadyQueued):
                await workers.defer_sync("acme")
            other = await workers.defer_sync("globex")
            assert other != first
            rows = sql(
                db,
                f"SELECT args->>'connection_key', lock, queueing_lock FROM procrastinate_jobs WHERE {SYNCS}",
            )
            assert sorted(rows) == [("acme", "acme", "acme"), ("globex", "globex", "globex")]

    async def test_one_sync_per_connection_at_a_time_across_two_workers(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """Two workers of 4 jobs each, syncs of two connections deferred over and over: the runs of one
        connection never overlap (procrastinate's events), and every deferred sync ran."""
        resolve = resolver(sim)
        async with Workers(db, resolve=resolve) as one, Workers(db, resolve=resolve) as two:
            runners = [
                asyncio.create_task(w.run_worker(concurrency=4, fetch_job_polling_interval=0.05))
                for w in (one, two)
            ]
            deferred = 0
            deadline = time.monotonic() + 20
            while deferred < 12 and time.monotonic() < deadline:
                for key in ("acme", "globex"):
                    with contextlib.suppress(AlreadyQueued):
                        await one.defer_sync(key)
                        deferred += 1
                await asyncio.sleep(0.05)
            while sql(db, f"SELECT 1 FROM procrastinate_jobs WHERE {SYNCS} AND status IN ('todo', 'doing')"):
                assert time.monotonic() < deadline + 20, "the syncs did not finish"
                await asyncio.sleep(0.1)
            for w in (one, two):
                w.stop()
            for task in runners:
                task.cancel()
            await asyncio.gather(*runners, return_exceptions=True)
            spans = sql(
                db,
                """SELECT j.lock, min(e.at) FILTER (WHERE e.type = 'started'),
                          max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed'))
                   FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
                   WHERE j.task_name = 'lmsconnect.sync_connection' GROUP BY j.id, j.lock""",
            )
            health = {h.key: h for h in await one.health()}
        assert deferred >= 6
        assert len(spans) == deferred
        for key in ("acme", "globex"):
            runs = sorted((start, end) for lock, start, end in spans if lock == key)
            # Event times are procrastinate's now(): the start of the transaction that wrote them, not
            # its commit, so a finish can be stamped a little after the next start that waited for it
            # (0.4 ms seen under load). A real overlap lasts a sync (hundreds of ms).
            for (_, end), (start, _) in itertools.pairwise(runs):
                assert (start - end).total_seconds() > -0.05, f"two syncs of {key} overlapped"
            assert health[key].syncs == len(runs)
            assert health[key].last_outcome == "ok"


class TestActions:
    async def test_a_deferred_actions_per_item_result_is_read_back_by_job_id(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """enroll_user deferred by a 'web process', run by a worker: its per-item result is read back."""
        learner = next(u for u in sim.users if sim.role_for(u) == "learner")
        course = next(c for c in sim.courses if sim.enrollment(learner.id, c.id) is None)
        async with Workers(db, resolve=resolver(sim)) as workers:
            job = await workers.defer_action(
                "enroll_user",
                "acme",
                user_id=f"remote:{learner.id}",
                course_revision_id=f"remote:{course.id}",
            )
            pending = await workers.action_outcome(job)
            assert pending.status == "pending"
            await workers.run_worker(concurrency=2, wait=False)
            outcome = await workers.action_outcome(job, wait_s=5)
        assert outcome.status == "succeeded", outcome
        assert outcome.result is not None
        assert [i["status"] for i in outcome.result["items"]] == ["created"]
        assert sim.enrollment(learner.id, course.id) is not None

    async def test_bad_action_input_fails_with_its_code_and_is_not_retried(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """An action with an id of another connector fails once with INPUT.INVALID, no retry."""
        async with Workers(db, resolve=resolver(sim)) as workers:
            job = await workers.defer_action("deactivate_course", "acme", course_id="moodle:courses:1")
            await workers.run_worker(concurrency=2, wait=False)
            outcome = await workers.action_outcome(job)
        assert outcome.status == "failed"
        assert outcome.error_code == "INPUT.INVALID"
        assert sql(db, "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = %s", job) == [
            ("succeeded", 1)
        ]


class TestFailures:
    async def test_a_revoked_key_marks_the_connection_and_is_not_retried(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """A sync with a wrong API key fails once (no retry), health says REMOTE.AUTHENTICATION and
        needs attention, and the fan-out skips the connection until it is scheduled again."""
        async with Workers(
            db, resolve=resolver(sim, api_key="revoked"), connect_options={"http": FAST_HTTP}
        ) as w:
            await w.schedule("acme", every=3600)
            assert await w.fan_out() == 1
            await w.run_worker(concurrency=1, wait=False)
            [health] = await w.health()
            assert health.needs_attention
            assert health.last_error_code == "REMOTE.AUTHENTICATION"
            # One rejected read (besides the rate-budget lookup): no other model was tried with the key.
            reads = {r: n for r, n in sim.calls_by_route.items() if r != "GET /v1/ratelimit"}
            assert sum(reads.values()) == 1, sim.calls_by_route
            jobs = sql(db, f"SELECT status::text, attempts FROM procrastinate_jobs WHERE {SYNCS}")
            assert jobs == [("failed", 1)]
            sql(db, "UPDATE worker_connections SET next_due = now()")
            assert await w.fan_out() == 0
            await w.schedule("acme", every=3600)
            assert not (await w.health("acme"))[0].needs_attention

    async def test_a_vendor_outage_is_retried_later(self, db: str, sim: TalentLMSSimulator) -> None:
        """Every call answered 500: the sync is partial with REMOTE.ERROR and the job is queued again
        for later (backoff), not failed."""
        sim.fault_rate = 1.0
        async with Workers(
            db, resolve=resolver(sim), connect_options={"http": FAST_HTTP}, backoff_base_s=60
        ) as w:
            await w.defer_sync("acme")
            await w.run_worker(concurrency=1, wait=False)
            [health] = await w.health()
        assert health.last_outcome == "partial"
        assert health.last_error_code == "REMOTE.ERROR"
        assert not health.needs_attention
        [(status, attempts, later)] = sql(
            db, f"SELECT status::text, attempts, scheduled_at > now() FROM procrastinate_jobs WHERE {SYNCS}"
        )
        assert (status, attempts, later) == ("todo", 1, True)


class TestSchedule:
    async def test_fan_out_defers_due_connections_once_and_moves_their_next_due(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """Two due connections and one not due: the fan-out defers two; a second fan-out none."""
        import datetime as dt

        async with Workers(db, resolve=resolver(sim)) as w:
            await w.schedule("a", every=dt.timedelta(hours=6))
            await w.schedule("b", every=60)
            await w.schedule("c", every=60, first=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
            assert await w.fan_out() == 2
            assert await w.fan_out() == 0
            await w.run_worker(concurrency=2, wait=False)
            health = {h.key: h for h in await w.health()}
        assert health["a"].last_outcome == health["b"].last_outcome == "ok"
        assert health["c"].last_outcome is None
        assert health["a"].next_due is not None and health["b"].next_due is not None
        assert health["a"].next_due - health["b"].next_due > dt.timedelta(hours=5)


class TestSecrets:
    async def test_the_api_key_is_nowhere_in_the_database_or_the_logs(
        self, db: str, sim: TalentLMSSimulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """After syncs, a failing sync and actions, a dump of the whole database and every log line at
        DEBUG hold no trace of the API key (nor its Basic-auth form)."""
        import base64

        caplog.set_level(logging.DEBUG)
        async with Workers(db, resolve=resolver(sim)) as w:
            await w.schedule("acme", every=60)
            await w.fan_out()
            await w.defer_action("deactivate_course", "acme", course_id="talentlms:courses:999999")
            await w.defer_action(
                "upsert_courses", "acme", {"items": [{"origin_id": "x", "course": {"title": "T"}}]}
            )
            await w.run_worker(concurrency=2, wait=False)
            sim.fault_rate = 1.0
            await w.defer_sync("acme")
            await w.run_worker(concurrency=1, wait=False)
        url = db.rpartition("?")[0]
        from lmsconnect.testing._postgres import find_bindir

        bindir = find_bindir()
        pg_dump = str(bindir / "pg_dump") if bindir and (bindir / "pg_dump").exists() else "pg_dump"
        dump = subprocess.run(  # noqa: ASYNC221 - the test waits for the dump, nothing else runs
            [pg_dump, "--data-only", url], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        assert "acme" in dump and "worker_connections" in dump  # the dump has our data
        basic = base64.b64encode(f"{SECRET}:".encode()).decode()
        logs = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
        assert logs
        for text in (dump, logs):
            assert SECRET not in text
            assert basic not in text


# -- crash and shutdown: a worker in another process ---------------------------------------------------

WORKER = textwrap.dedent(
    """
    import asyncio, os, sys, logging
    from lmsconnect.workers import Workers
    logging.basicConfig(level=logging.INFO)

    def resolve(key):
        return "talentlms", {"base_url": os.environ["SIM_URL"], "api_key": os.environ["SIM_KEY"]}

    async def main():
        async with Workers(os.environ["DB"], resolve=resolve,
                           sync_options={"batch_size": 10, "lease_s": 3.0, "wait": 30.0}) as w:
            await w.run_worker(concurrency=2, fetch_job_polling_interval=0.1, update_heartbeat_interval=0.5)

    asyncio.run(main())
    """
)


class TestWorkerLoss:
    @pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
    async def test_a_sync_cut_off_in_a_worker_resumes_elsewhere_and_equals_a_clean_run(
        self, db: str, postgres_url: str, tmp_path: Path, how: signal.Signals
    ) -> None:
        """A worker process syncing a slow tenant is killed (or SIGTERMed) mid-run; another worker
        finishes the job (recovered as stalled, or deferred again at a batch boundary), and the store
        equals a clean run's."""
        async with TalentLMSSimulator(
            api_key=SECRET, users=300, courses=30, enrollments=600, latency=0.02, hourly_limit=100_000
        ) as sim:
            env = {**os.environ, "DB": db, "SIM_URL": sim.url, "SIM_KEY": SECRET}
            options = {"batch_size": 10, "lease_s": 3.0, "wait": 30.0}
            async with Workers(db, resolve=resolver(sim), sync_options=options) as w:
                await w.defer_sync("acme")
                # Cut it off once some batches are in the store but the run is not finished.
                returncode = await signal_when(
                    [sys.executable, "-c", WORKER], env, tmp_path / "worker.log",
                    db, "SELECT 1 FROM records LIMIT 1 OFFSET 30", how,
                )  # fmt: skip
                assert sql(db, "SELECT status FROM runs") == [("running",)], "cut off too late"
                if how == signal.SIGKILL:
                    await asyncio.sleep(1.5)  # its heartbeat goes stale
                    assert await w.recover_stalled(heartbeat_s=1.0) == 1
                else:
                    assert returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
                await w.run_worker(concurrency=2, wait=False)
                [health] = await w.health()
                assert health.last_outcome == "ok", health
                resumed = await snapshot(w.store, "acme")
                runs = sql(db, "SELECT status, attempts FROM runs")
            assert runs == [("complete", 2)]
            clean_db = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema=c_{uuid.uuid4().hex[:12]}"
            async with Workers(clean_db, resolve=resolver(sim)) as clean:
                await clean.defer_sync("acme")
                await clean.run_worker(concurrency=1, wait=False)
                expected = await snapshot(clean.store, "acme")
        assert sum(len(v) for v in expected.values()) > 300
        assert resumed == expected


BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "many_tenants.py"


def many_tenants() -> Any:
    """benchmarks/many_tenants.py as a module (skips where the checkout has no benchmarks)."""
    if not BENCHMARK.exists():
        pytest.skip("the benchmarks directory is not in this checkout")
    spec = importlib.util.spec_from_file_location("many_tenants", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestSharedBudget:
    async def test_three_processes_on_one_tenant_never_exceed_its_window_and_use_most_of_it(
        self, db: str
    ) -> None:
        """Three processes reading one TalentLMS tenant as fast as they can for 8 s through a shared
        budget (the benchmark's contention run): the simulator counts at most 200 calls in any 5 s,
        rejects none, and at least 90% of the two windows' 400 calls are used, by every process."""
        module = many_tenants()
        result = await module.run_contention(db, seconds=8.0, processes=3, start_in=8.0)
        assert result["contention_rejected_429"] == 0
        assert result["max_calls_per_5s"] <= 200
        assert result["budget_used"] >= 0.9, result
        assert len(result["calls_per_process"]) == 3 and min(result["calls_per_process"]) > 0, result


class TestCLI:
    async def test_schedule_enqueue_connections_and_a_worker_that_stops_on_sigterm(
        self, db: str, sim: TalentLMSSimulator, tmp_path: Path
    ) -> None:
        """`lmsconnect schedule/enqueue` queue work, `lmsconnect worker` (credentials from the
        environment) runs it and exits 0 on SIGTERM, `lmsconnect connections` shows the outcome."""
        from lmsconnect._cli import main

        def cli(*argv: str) -> tuple[int, str]:
            out = io.StringIO()
            return main([*argv, "--db", db], out=out), out.getvalue()

        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, cli, "schedule", "acme", "--every", "6h") == (
            0,
            "acme: synced every 6h (first: now)\n",
        )
        code, text = await loop.run_in_executor(None, cli, "enqueue", "sync", "acme")
        assert code == 0 and text.startswith("queued sync of acme: job ")
        code, text = await loop.run_in_executor(None, cli, "enqueue", "sync", "acme")
        assert code == 1 and "already queued" in text
        env = {
            **os.environ,
            "LMSCONNECT_CONNECTION_ACME": json.dumps({"slug": "talentlms", "config": sim.connect_config}),
        }
        returncode = await signal_when(
            [sys.executable, "-m", "lmsconnect", "worker", "--db", db, "--concurrency", "2"], env,
            tmp_path / "worker.log", db, "SELECT 1 FROM worker_connections WHERE last_outcome = 'ok'",
            signal.SIGTERM,
        )  # fmt: skip
        assert returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]
        code, text = await loop.run_in_executor(None, cli, "connections", "--json")
        [row] = json.loads(text)
        assert (row["key"], row["last_outcome"], row["needs_attention"]) == ("acme", "ok", False)
        assert row["last_counts"]["created"] > 0
        code, text = await loop.run_in_executor(None, cli, "connections")
        assert code == 0
        assert text.splitlines()[0].split()[:3] == ["connection", "last", "outcome"]
        assert text.splitlines()[2].split()[:2] == ["acme", "ok"]
        assert SECRET not in (tmp_path / "worker.log").read_text()


class TestPostgresBudgets:
    async def test_a_pause_from_one_process_holds_every_process_of_that_tenant(self, db: str) -> None:
        """After a 429 paused tenant A for 2 s (as the HTTP layer does), every opener of A's budget waits
        about 2 s; tenant B is not held."""
        async with lmsconnect.PostgresBudgets(db) as one, lmsconnect.PostgresBudgets(db) as other:
            windows = [(200, 5.25)]
            assert await one.admit("A", windows) == 0
            await one.pause("A", 2.0)
            assert 1.5 < await other.admit("A", windows) <= 2.0
            assert await other.admit("B", windows) == 0
            assert await one.calls("A", within_s=10) == 1

    async def test_a_full_window_answers_when_its_oldest_call_leaves_it(self, db: str) -> None:
        """Three calls fill a 3-per-1-s window: the fourth is told to wait until the first is 1 s old,
        and nothing is counted for it."""
        async with lmsconnect.PostgresBudgets(db) as budgets:
            windows = [(3, 1.0), (100, 3600.0)]
            assert [await budgets.admit("k", windows) for _ in range(3)] == [0, 0, 0]
            wait = await budgets.admit("k", windows)
            assert 0.5 < wait <= 1.0
            assert await budgets.calls("k", within_s=10) == 3
            await asyncio.sleep(wait)
            assert await budgets.admit("k", windows) == 0

    def test_connect_refuses_a_budget_that_is_not_a_shared_budget(self) -> None:
        """connect(budget=...) with something else is a ConfigurationError naming the type."""
        with pytest.raises(lmsconnect.ConfigurationError, match="SharedBudget"):
            lmsconnect.connect("talentlms", budget="acme", domain="a.talentlms.com", api_key="k")  # type: ignore[arg-type]


class TestExample:
    async def test_the_worked_example_of_the_scale_page_runs(self, postgres_url: str) -> None:
        """docs/examples/scale_service.py runs to the end: both customers synced, the enrolment created."""
        example = EXAMPLE
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(example), env={**os.environ, "LMSCONNECT_DB": postgres_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        text = out.decode()
        assert proc.returncode == 0, text[-3000:]
        assert "enrolment: succeeded ['created']" in text
        assert "acme: ok" in text and "globex: ok" in text


class TestRecoveredJobs:
    async def test_a_recovered_job_whose_sync_had_finished_does_not_sync_again(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """A sync job that completed its sync but whose worker died before the job was marked done is
        recovered as stalled and runs again: it finds its sync recorded and makes no call."""
        async with Workers(db, resolve=resolver(sim)) as w:
            job = await w.defer_sync("acme")
            await w.run_worker(concurrency=1, wait=False)
            calls = sim.calls
            # As if the worker had died before procrastinate recorded the outcome: back to todo.
            sql(db, "UPDATE procrastinate_jobs SET status = 'todo' WHERE id = %s", job)
            await w.run_worker(concurrency=1, wait=False)
            [health] = await w.health()
        assert sim.calls == calls
        assert health.syncs == 1

    async def test_a_recovered_action_job_is_not_applied_twice(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """An upsert whose result was recorded before its worker died makes no call when recovered."""
        async with Workers(db, resolve=resolver(sim)) as w:
            upsert = {"items": [{"origin_id": "once", "course": {"title": "Once"}}]}
            job = await w.defer_action("upsert_courses", "acme", upsert)
            await w.run_worker(concurrency=1, wait=False)
            calls = sim.calls
            sql(db, "UPDATE procrastinate_jobs SET status = 'todo' WHERE id = %s", job)
            await w.run_worker(concurrency=1, wait=False)
            outcome = await w.action_outcome(job)
        assert sim.calls_by_route["POST /v1/createcourse"] == 1
        assert sim.calls == calls  # not even the listing an upsert starts with
        assert outcome.status == "succeeded"


class TestBenchmark:
    async def test_many_tenants_prints_the_figures_the_issue_names(self, postgres_url: str) -> None:
        """A small run (6 tenants, 2 workers): every tenant synced once, no 429, never two syncs of one
        tenant at once, and every figure the issue asks for present."""
        module = many_tenants()
        args = argparse.Namespace(
            db=postgres_url, contention=None, tenants=6, workers=2, concurrency=4, users=10, courses=3,
            enrollments=20, kill=False, compare_one=False,
        )  # fmt: skip
        result = await module.main(args)
        for key in (
            "tenants", "workers", "tenants_synced", "tenants_per_minute", "api_calls", "rejected_429",
            "max_concurrent_syncs_per_tenant", "peak_rss_mb_per_worker",
        ):  # fmt: skip
            assert key in result, key
        assert (result["tenants"], result["workers"], result["tenants_synced"]) == (6, 2, 6)
        assert result["synced_exactly_once"]
        assert result["rejected_429"] == 0
        assert result["max_concurrent_syncs_per_tenant"] == 1
        assert result["api_calls"] > 6 and result["peak_rss_mb_per_worker"] > 10


class TestShareBudgets:
    def test_separate_read_and_write_budgets_are_shared_under_two_keys(self) -> None:
        """A connector with a read and a write budget (360Learning: 50 reads/s, 10 writes/s) shares them
        under `key` and `key:write`; one budget for both (TalentLMS) under `key` alone."""
        from lmsconnect._http import HttpClient, RateBudget, RateWindow

        backend: Any = object()
        reads, writes = RateBudget(RateWindow(50, 1.0)), RateBudget(RateWindow(10, 1.0))
        HttpClient(
            slug="x", base_url="http://127.0.0.1", read_budget=reads, write_budget=writes
        ).share_budgets(lmsconnect.SharedBudget(backend, "acme"))
        assert (reads._backend, reads._key, writes._backend, writes._key) == (
            backend,
            "acme",
            backend,
            "acme:write",
        )
        one = RateBudget(RateWindow(200, 5.0))
        HttpClient(slug="x", base_url="http://127.0.0.1", read_budget=one).share_budgets(
            lmsconnect.SharedBudget(backend, "globex")
        )
        assert (one._backend, one._key) == (backend, "globex")


class TestSharedPause:
    async def test_a_429_one_connection_receives_holds_the_other_connections_of_that_tenant(
        self, db: str
    ) -> None:
        """Connection A (its own budget object, as another process would have) gets a 429 that holds the
        tenant for ~2 s; connection B's next call waits it out in the shared budget instead of being
        refused too. Without the shared pause B would receive a 429 of its own."""
        async with (
            TalentLMSSimulator(
                api_key=SECRET, hourly_limit=100_000, throttle_rate=1.0, throttle_seconds=2.0,
                fault_routes=["GET /v1/courses"],
            ) as sim,
            lmsconnect.PostgresBudgets(db) as budgets_a,
            lmsconnect.PostgresBudgets(db) as budgets_b,
        ):  # fmt: skip
            config = sim.connect_config
            a = lmsconnect.connect("talentlms", budget=budgets_a.tenant("acme"), http=FAST_HTTP, **config)
            b = lmsconnect.connect("talentlms", budget=budgets_b.tenant("acme"), **config)
            async with a, b:
                await b.passthrough("GET", "/v1/users")  # calibrated before the 429
                with pytest.raises(lmsconnect.RateLimited):
                    await a.passthrough("GET", "/v1/courses")
                started = time.monotonic()
                response = await b.passthrough("GET", "/v1/users")
                waited = time.monotonic() - started
                rejected = b.stats.rejected
            assert response.status == 200
            assert rejected == 0
            assert waited >= 1.0
            assert sim.rejected_calls == 1


class TestUnreachableDatabase:
    def test_the_cli_says_it_cannot_reach_the_database_instead_of_a_pool_timeout(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`lmsconnect connections` against a port nobody listens on: exit 2 within seconds, one line
        naming the URL (without a password) and the server's refusal."""
        from lmsconnect._cli import main

        started = time.monotonic()
        code = main(["connections", "--db", "postgresql://lms:hunter2@127.0.0.1:1/app"], out=io.StringIO())
        err = capsys.readouterr().err
        assert code == 2
        assert time.monotonic() - started < 15
        assert "cannot open" in err and "127.0.0.1:1" in err and "refused" in err
        assert "hunter2" not in err


class TestStoreSharedBudgets:
    async def test_a_store_with_shared_budgets_counts_every_sync_in_them(
        self, db: str, sim: TalentLMSSimulator
    ) -> None:
        """`open_store(url, shared_budgets=True)`: a sync whose connector was given no budget counts its
        calls in the store's shared budgets under the connection key; the default store does not."""
        async with (
            lmsconnect.open_store(db) as plain,
            lmsconnect.connect("talentlms", **sim.connect_config) as lms,
        ):
            await lmsconnect.sync(lms, plain, connection="local", models=["users"])
        async with lmsconnect.open_store(db, shared_budgets=True) as store:
            assert store.budgets is not None
            async with lmsconnect.connect("talentlms", **sim.connect_config) as lms:
                report = await lmsconnect.sync(lms, store, connection="acme", models=["users"])
                counted = await store.budgets.calls("acme", within_s=60)
                assert lms.shared_budget == lmsconnect.SharedBudget(store.budgets, "acme")
            assert await store.budgets.calls("local", within_s=60) == 0
        assert report.calls > 0 and counted == report.calls

    async def test_the_url_switch_and_a_connectors_own_budget(self, db: str, sim: TalentLMSSimulator) -> None:
        """``?budgets=shared`` in the URL turns them on; a connector given ``budget=`` keeps its own; a
        bad value and SQLite are refused with a message saying what to use."""
        async with (
            lmsconnect.open_store(f"{db}&budgets=shared") as store,
            lmsconnect.PostgresBudgets(db) as own,
        ):
            assert store.budgets is not None
            config = sim.connect_config
            async with lmsconnect.connect("talentlms", budget=own.tenant("mine"), **config) as lms:
                await lmsconnect.sync(lms, store, connection="acme", models=["users"])
            assert await store.budgets.calls("acme", within_s=60) == 0
            assert await own.calls("mine", within_s=60) > 0
        with pytest.raises(lmsconnect.InvalidInput, match="budgets=shared"):
            async with lmsconnect.open_store(f"{db}&budgets=yes"):
                pass
        with pytest.raises(lmsconnect.InvalidInput, match="PostgreSQL"):
            async with lmsconnect.open_store(":memory:", shared_budgets=True):
                pass


HOURLY_CLIENT = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import lmsconnect

    async def main():
        config = json.loads(os.environ["CONFIG"])
        admitted = limited = 0
        async with lmsconnect.PostgresBudgets(os.environ["DB"]) as budgets:
            http = lmsconnect.HttpOptions(max_wait_s=5.0)
            async with lmsconnect.connect("talentlms", budget=budgets.tenant("acme"), http=http,
                                          **config) as lms:
                for _ in range(int(os.environ["CALLS"])):
                    try:
                        await lms.passthrough("GET", "/v1/users/id:1")
                        admitted += 1
                    except lmsconnect.RateLimited:
                        limited += 1
                print(admitted, limited, lms.stats.rejected)

    asyncio.run(main())
    """
)


class TestSharedHourlyPlan:
    async def test_two_processes_draw_from_one_hourly_plan_window(self, db: str) -> None:
        """TalentLMS's hourly plan budget (30 calls here) is one window for two processes sharing the
        tenant: together they spend exactly 30 (each one's opening GET /v1/ratelimit, free at TalentLMS,
        is counted in the shared window too), the rest are refused locally as RateLimited, and the
        vendor never answers 429 (each process alone would have spent 30)."""
        async with lmsconnect.PostgresBudgets(db):  # the tables exist before the processes race
            pass
        async with TalentLMSSimulator(api_key=SECRET, hourly_limit=30) as server:
            env = {**os.environ, "DB": db, "CONFIG": json.dumps(server.connect_config), "CALLS": "25"}
            procs = [
                await asyncio.create_subprocess_exec(
                    sys.executable, "-c", HOURLY_CLIENT, env=env, stdout=asyncio.subprocess.PIPE
                )
                for _ in range(2)
            ]
            outputs = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
            rejected = server.rejected_calls
            calibrations = server.calls_by_route["GET /v1/ratelimit"]
        counts = [[int(n) for n in out.split()] for out, _ in outputs]
        assert all(p.returncode == 0 for p in procs) and len(counts) == 2, outputs
        assert calibrations == 2
        assert sum(c[0] for c in counts) + calibrations == 30, counts
        assert sum(c[0] + c[1] for c in counts) == 50, counts
        assert rejected == 0 and all(c[2] == 0 for c in counts), counts


def crash_after_the_vendor_answered(db: str, job: int) -> None:
    """The state a worker killed between the vendor's answer and the result record leaves once
    procrastinate recovers the stalled job: the job back to ``todo``, no recorded result."""
    sql(db, "DELETE FROM action_results WHERE job_id = %s", job)
    sql(db, "UPDATE procrastinate_jobs SET status = 'todo' WHERE id = %s", job)


@contextlib.asynccontextmanager
async def vendor(slug: str) -> AsyncIterator[Any]:
    if slug == "talentlms":
        async with TalentLMSSimulator(api_key=SECRET, hourly_limit=100_000) as talentlms:
            yield talentlms
    elif slug == "360learning":
        from lmsconnect_360learning.testing import Learning360Simulator

        async with Learning360Simulator() as learning360:
            learning360.processing_delay = 0
            yield learning360
    else:
        from lmsconnect_moodle.testing import MoodleSimulator

        async with MoodleSimulator(site="fixture") as moodle:
            yield moodle


def enrolment(slug: str, sim: Any, course_remote_id: str) -> dict[str, Any]:
    """An enroll_user payload of a learner the vendor has not enrolled in that course."""
    if slug == "talentlms":
        learners = [u for u in sim.users if sim.role_for(u) == "learner"]
        user = next(u for u in learners if sim.enrollment(u.id, course_remote_id) is None).id
    elif slug == "360learning":
        user = next(u for u in sim.company.users.values() if u.status == "active").id
    else:
        user = 5
    return {"user_id": f"remote:{user}", "course_revision_id": f"remote:{course_remote_id}"}


class TestActionRerunAfterCrash:
    @pytest.mark.parametrize("slug", ["talentlms", "360learning", "moodle"])
    async def test_an_action_run_again_after_its_worker_died_leaves_the_same_state(
        self, db: str, slug: str
    ) -> None:
        """upsert_courses then enroll_user run by a worker; then each is run again as after a worker
        killed between the vendor's answer and the result record: the re-runs answer ``unchanged``,
        and a sync after them finds nothing created, updated or deleted (the vendor's state is the one
        the first runs left)."""
        async with vendor(slug) as sim:
            config = sim.connect_config
            async with Workers(db, resolve=lambda key: (slug, config)) as w:

                async def run(action: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
                    job = await w.defer_action(action, "acme", payload)
                    await w.run_worker(concurrency=1, wait=False)
                    outcome = await w.action_outcome(job)
                    assert outcome.status == "succeeded" and outcome.result is not None, outcome
                    return job, dict(outcome.result)

                course = {"title": "Rerun 101", "description": "Safe to run twice"}
                if slug == "360learning":
                    course["course_url"] = "https://content.example.com/rerun-101"
                upsert = {"items": [{"origin_id": "rerun-101", "course": course}]}
                upsert_job, created = await run("upsert_courses", upsert)
                assert [i["status"] for i in created["items"]] == ["created"]
                enroll = enrolment(slug, sim, str(created["items"][0]["remote_id"]))
                enroll_job, enrolled = await run("enroll_user", enroll)
                assert [i["status"] for i in enrolled["items"]] in (["created"], ["accepted"])
                async with lmsconnect.connect(slug, **config) as lms:
                    await lmsconnect.sync(lms, w.store, connection="acme")
                before = await snapshot(w.store, "acme")

                for job in (upsert_job, enroll_job):
                    crash_after_the_vendor_answered(db, job)
                    await w.run_worker(concurrency=1, wait=False)
                    again = await w.action_outcome(job)
                    assert again.status == "succeeded" and again.result is not None, again
                    assert [i["status"] for i in again.result["items"]] == ["unchanged"], again
                async with lmsconnect.connect(slug, **config) as lms:
                    report = await lmsconnect.sync(lms, w.store, connection="acme")
                after = await snapshot(w.store, "acme")
        changed = {k: (m.created, m.updated, m.deleted) for k, m in report.models.items()}
        assert all(c == (0, 0, 0) for c in changed.values()), changed
        assert after == before
