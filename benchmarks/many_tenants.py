"""Many TalentLMS tenants synced by several worker processes through procrastinate and PostgreSQL.

    python benchmarks/many_tenants.py --tenants 200 --workers 4 [--db URL] [--kill] [--compare-one]
    python benchmarks/many_tenants.py --contention 30 [--db URL]

One multi-tenant TalentLMS simulator (every tenant its own API key, data and rate limits: 200 calls per
5 s and the hourly plan) runs in this process; ``--workers`` worker processes (``Workers.run_worker``,
``--concurrency`` jobs each) sync every tenant once, deferred by one fan-out of their schedules. Without
``--db`` a throwaway PostgreSQL server is started (and removed). Figures: tenants synced per minute, API
calls, 429s (0 with shared budgets), the most syncs of one tenant ever running at once (procrastinate's
job events; must be 1), peak RSS per worker. ``--compare-one`` repeats the run with one worker for the
ratio. ``--kill`` then runs once more and kills one worker with SIGKILL mid-run: its jobs are recovered
as stalled, every tenant still ends synced exactly once (``kill_run_*``), and the store's records equal
those of the clean run (``store_equal_to_clean_run``). The top-level figures are the clean run's.

``--contention S``: four processes read ONE tenant as fast as they can for S seconds through the shared
budget; the simulator counts the calls admitted in every sliding 5 s window (``max_calls_per_5s``, must be
<= 200) and the share of the budget used (``budget_used``, 200 per 5 s).

The last line with ``--json`` is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = str(Path(__file__).resolve().parent)
sys.path.insert(0, BENCH_DIR)

from _common import print_result  # noqa: E402
from _multitenant import MultiTenantTalentLMS, api_key_of  # noqa: E402

WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    sys.path.insert(0, os.environ["BENCH_DIR"])
    from _multitenant import api_key_of
    from lmsconnect.workers import Workers

    def resolve(key):
        return "talentlms", {"base_url": os.environ["SIM_URL"], "api_key": api_key_of(key)}

    async def main():
        options = {"lease_s": 5.0, "wait": 60.0}
        async with Workers(os.environ["DB"], resolve=resolve, sync_options=options) as w:
            await w.run_worker(concurrency=int(os.environ["CONCURRENCY"]), fetch_job_polling_interval=0.2,
                               update_heartbeat_interval=1.0)

    asyncio.run(main())
    """
)

HAMMER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    sys.path.insert(0, os.environ["BENCH_DIR"])
    from _multitenant import api_key_of
    import lmsconnect

    async def main():
        async with lmsconnect.PostgresBudgets(os.environ["DB"]) as budgets:
            config = {"base_url": os.environ["SIM_URL"], "api_key": api_key_of("t0")}
            async with lmsconnect.connect("talentlms", budget=budgets.tenant("t0"), **config) as lms:
                await lms.passthrough("GET", "/v1/ratelimit")
                start = float(os.environ["START"])
                if time.time() > start:
                    sys.exit("started too late: give the processes more time to start")
                await asyncio.sleep(start - time.time())
                end = start + float(os.environ["SECONDS"])

                async def loop():
                    while time.time() < end:
                        await lms.passthrough("GET", "/v1/users/id:1")

                tasks = [asyncio.ensure_future(loop()) for _ in range(16)]
                await asyncio.wait(tasks, timeout=end - time.time())
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                print(lms.stats.calls, lms.stats.rejected)

    asyncio.run(main())
    """
)


def _schema_url(db: str, prefix: str) -> str:
    return f"{db}{'&' if '?' in db else '?'}schema={prefix}_{uuid.uuid4().hex[:10]}"


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _sql(workers: Any, query: str, *params: Any) -> list[tuple[Any, ...]]:
    async with workers._pool().connection() as conn:
        await conn.execute(f"SET search_path TO {workers._s}".encode())
        cur = await conn.execute(query.encode(), params or None)
        rows: list[tuple[Any, ...]] = await cur.fetchall()
        await conn.execute(b"RESET search_path")
        return rows


async def run_many(
    db: str, sim: MultiTenantTalentLMS, tenants: list[str], *, workers: int, concurrency: int, kill: bool
) -> dict[str, Any]:
    from lmsconnect.workers import Workers

    url = _schema_url(db, "bench")
    env = {
        **os.environ, "DB": url, "SIM_URL": sim.url, "CONCURRENCY": str(concurrency),
        "BENCH_DIR": BENCH_DIR,
    }  # fmt: skip
    calls_before, rejected_before = sim.calls, sim.rejected
    async with Workers(url, resolve=lambda key: ("talentlms", {})) as control:
        for t in tenants:
            await control.schedule(t, every=3600.0)
        queued = await control.fan_out()
        started = time.monotonic()
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WORKER, env=env, stdout=asyncio.subprocess.DEVNULL
            )
            for _ in range(workers)
        ]
        peaks: dict[int, float] = {}
        killed = recovered = 0
        try:
            while True:
                for p in procs:
                    hwm = _vm_hwm_mb(p.pid)
                    if hwm is not None:
                        peaks[p.pid] = max(peaks.get(p.pid, 0.0), hwm)
                [(done, left)] = await _sql(
                    control,
                    """SELECT count(*) FILTER (WHERE status IN ('succeeded', 'failed')),
                              count(*) FILTER (WHERE status IN ('todo', 'doing'))
                    FROM procrastinate_jobs WHERE task_name = 'lmsconnect.sync_connection'""",
                )
                if kill and not killed and done >= len(tenants) // 3:
                    procs[0].send_signal(signal.SIGKILL)
                    killed = 1
                if killed:
                    recovered += await control.recover_stalled(heartbeat_s=4.0)
                if left == 0 and done >= len(tenants):
                    break
                if time.monotonic() - started > 3600:
                    raise RuntimeError("the benchmark did not finish within an hour")
                await asyncio.sleep(0.5)
            elapsed = time.monotonic() - started
        finally:
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(p.wait(), 30)
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        spans = await _sql(
            control,
            """SELECT j.lock, min(e.at) FILTER (WHERE e.type = 'started'),
                      max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed', 'aborted'))
               FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
               WHERE j.task_name = 'lmsconnect.sync_connection' GROUP BY j.id, j.lock""",
        )
        health = await control.health()
        digest = await _sql(
            control,
            """SELECT md5(string_agg(connection || '/' || model || '/' || id || '/' || data_hash, ','
                                     ORDER BY connection, model, id)), count(*) FROM records""",
        )
    # The most syncs of one tenant running at once: sweep each tenant's job intervals.
    most = 0
    by_key: dict[str, list[tuple[Any, int]]] = {}
    for key, start, end in spans:
        if start is None:
            continue
        by_key.setdefault(key, []).extend([(start, 1), (end or start, -1)])
    for events in by_key.values():
        running = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            running += step
            most = max(most, running)
    syncs = [h.syncs for h in health]
    return {
        "tenants": len(tenants),
        "workers": workers,
        "concurrency_per_worker": concurrency,
        "queued": queued,
        "tenants_synced": sum(1 for h in health if h.last_outcome == "ok"),
        "synced_exactly_once": all(s == 1 for s in syncs) and len(syncs) == len(tenants),
        "seconds": round(elapsed, 1),
        "tenants_per_minute": round(len(tenants) / elapsed * 60, 1),
        "api_calls": sim.calls - calls_before,
        "rejected_429": sim.rejected - rejected_before,
        "max_concurrent_syncs_per_tenant": most,
        "peak_rss_mb_per_worker": round(max(peaks.values(), default=0.0), 1),
        "killed_workers": killed,
        "recovered_jobs": recovered,
        "records": digest[0][1],
        "store_digest": digest[0][0],
    }


async def run_contention(
    db: str, seconds: float, processes: int, *, start_in: float = 12.0
) -> dict[str, Any]:
    import lmsconnect

    url = _schema_url(db, "cont")
    async with lmsconnect.PostgresBudgets(url):  # creates the tables before the processes race
        pass
    async with MultiTenantTalentLMS(["t0"], hourly_limit=1_000_000) as sim:
        sim.record = True
        # Every process starts its clock at the same moment, once they all are up and calibrated.
        start = time.time() + start_in
        env = {
            **os.environ, "DB": url, "SIM_URL": sim.url, "START": f"{start:.3f}", "SECONDS": str(seconds),
            "BENCH_DIR": BENCH_DIR,
        }  # fmt: skip
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", HAMMER, env=env, stdout=asyncio.subprocess.PIPE
            )
            for _ in range(processes)
        ]
        outputs = [await p.communicate() for p in procs]
        times = sorted(sim.admitted[api_key_of("t0")])
    counted = [tuple(int(n) for n in out.split()) for out, _ in outputs if out.strip()]
    if len(counted) != processes:
        raise RuntimeError("a contention process failed (started too late? give it more time: start_in)")
    most = 0
    j = 0
    for i, t in enumerate(times):
        while t - times[j] >= 5.0:
            j += 1
        most = max(most, i - j + 1)
    return {
        "contention_processes": processes,
        "contention_seconds": seconds,
        "contention_calls": len(times),
        "calls_per_process": [calls for calls, _ in counted],
        "max_calls_per_5s": most,
        # Of what the windows that began within the run allow: 200 in each 5 s window.
        "budget_used": round(len(times) / (200 * math.ceil(seconds / 5.0)), 3),
        "contention_rejected_429": sim.rejected + sum(rejected for _, rejected in counted),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    server = None
    db = args.db
    if db is None:
        from lmsconnect.testing._postgres import TemporaryPostgres

        server = TemporaryPostgres(max_connections=400)
        db = server.start()
    try:
        if args.contention:
            return await run_contention(db, args.contention, args.processes)
        tenants = [f"t{i}" for i in range(args.tenants)]
        sizes = {"users": args.users, "courses": args.courses, "enrollments": args.enrollments}
        async with MultiTenantTalentLMS(tenants, **sizes) as sim:
            # A clean run with --workers workers first: the figures, and the store the others must equal
            # (every run reads the same simulated tenants; syncs only read).
            result = await run_many(
                db, sim, tenants, workers=args.workers, concurrency=args.concurrency, kill=False
            )
            if args.compare_one:
                one = await run_many(db, sim, tenants, workers=1, concurrency=args.concurrency, kill=False)
                result["one_worker_tenants_per_minute"] = one["tenants_per_minute"]
                result["one_worker_seconds"] = one["seconds"]
                result["one_worker_peak_rss_mb"] = one["peak_rss_mb_per_worker"]
                speedup = result["tenants_per_minute"] / one["tenants_per_minute"]
                result["speedup_vs_one_worker"] = round(speedup, 2)
                result["one_worker_store_equal"] = one["store_digest"] == result["store_digest"]
            if args.kill:
                killed = await run_many(
                    db, sim, tenants, workers=args.workers, concurrency=args.concurrency, kill=True
                )
                result["killed_workers"] = killed["killed_workers"]
                result["recovered_jobs"] = killed["recovered_jobs"]
                for key in ("tenants_synced", "synced_exactly_once", "rejected_429",
                            "max_concurrent_syncs_per_tenant", "seconds"):  # fmt: skip
                    result[f"kill_run_{key}"] = killed[key]
                result["store_equal_to_clean_run"] = killed["store_digest"] == result["store_digest"]
        return result
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=25, help="jobs at once per worker")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--courses", type=int, default=10)
    parser.add_argument("--enrollments", type=int, default=200)
    parser.add_argument("--db", help="a PostgreSQL URL; default: a throwaway server")
    parser.add_argument("--kill", action="store_true", help="SIGKILL one worker mid-run")
    parser.add_argument("--compare-one", action="store_true", help="also run with one worker")
    parser.add_argument("--contention", type=float, help="seconds of the one-tenant contention run")
    parser.add_argument("--processes", type=int, default=4, help="processes of the contention run")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments))
    print_result(figures, as_json=arguments.json, width=32)
