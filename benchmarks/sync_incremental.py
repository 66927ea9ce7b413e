"""Incremental sync: a first full sync into a state store, then a second one after 1% of records changed
and 1% were removed; SQLite and PostgreSQL side by side; many connections syncing into one PostgreSQL
store at once.

    python benchmarks/sync_incremental.py --json                       # SQLite, a temporary file
    python benchmarks/sync_incremental.py --json --scale 10
    python benchmarks/sync_incremental.py --db postgresql://me@localhost/bench --json
    python benchmarks/sync_incremental.py --compare --scales 1,10       # both stores, side by side
    python benchmarks/sync_incremental.py --compare --concurrent 8 --json

``--db`` takes a SQLite path or a PostgreSQL URL (each run uses a fresh schema ``lmsconnect_bench_*`` in
it, dropped at the end). ``--compare`` runs SQLite and PostgreSQL at each of ``--scales``, each run in a
process of its own (so that each peak RSS is its own), and prints them side by side; PostgreSQL is the
``--db`` URL, or ``--pg URL``, or else a throwaway server this script starts (fsync on: commits cost what
they cost on a real server) from the PostgreSQL binaries (``lmsconnect.testing._postgres``).

``--concurrent N``: N processes, each syncing its own connection (a connection key of its own on the same
simulated tenant) into one PostgreSQL store at once, while a consumer in this process reads
``changes(since=cursor)`` and saves its cursor after each change. Prints the total records per second
and whether the consumer missed or saw twice any change of the final log (it must not).

The tenant is the Toy LMS example connector's simulator (docs/examples/toylms), scaled to 2,000 users,
200 courses (each one course and one revision) and 20,000 progressions per ``--scale`` unit. It runs in a
process of its own, like a remote vendor, so the sync process's memory and CPU are what is measured; its
handlers are indexed (the example's scan every enrolment per request) so that the simulator is not the
bottleneck at 10x. The Toy connector's rate budget is set to ``--calls-per-second`` (default 2,000; the
example's default of 20/s would make the run measure the rate limit, whose floor is printed).

Between the syncs, the simulator edits 1% of the users (e-mail), of the courses (title, which changes
their revision) and of the progressions (completion), and removes 1% of the users, of the courses (with
their revision and progressions) and of the remaining progressions.

The last line of ``--json`` output is one JSON object with ``first_sync_s``, ``second_sync_s``,
``changes_second_sync``, ``store_writes_per_s`` (rows the store wrote in the first sync, records plus
change-log entries, per second spent in its transactions, serialisation included), ``peak_rss_mb`` (of
the syncing process: the sync and the store, not the simulator, nor a database server), and the details
behind them, for the store ``--db`` names at ``--scale``; with ``--compare``, ``side_by_side`` (the same
figures per store and scale); with ``--concurrent N``, ``concurrent_connections``, ``records_per_s``,
``consumer_missed`` and ``consumer_doubled``. Memory must stay
flat as the tenant grows: compare ``peak_rss_mb`` at ``--scale 1`` and ``--scale 10``. The core's
``make_id`` keeps an LRU cache of up to 65,536 ids; it is bounded, but it fills as the tenant grows (about
25 MB when full), and ``make_id_cache_entries`` shows how full it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

import lmsconnect
from lmsconnect._store import open_store
from lmsconnect._store_postgres import is_postgres_url
from lmsconnect._sync import SyncReport, sync

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when a test loads this by path
from _common import SimulatorProcess, peak_rss_mb, print_result

USERS, COURSES, PROGRESSIONS = 2_000, 200, 20_000


# -- the simulator process ----------------------------------------------------------------------------


def build_simulator(scale: int, seed: int, latency: float) -> Any:
    from aiohttp import web
    from lmsconnect_toylms.testing import PAGE, ToySimulator

    class IndexedToySimulator(ToySimulator):
        """The Toy simulator with per-course enrolment lists and cached listings (same responses)."""

        def _list(self, kind: str) -> Any:
            async def handler(request: web.Request) -> web.Response:
                self._need(f"{kind}:read")
                rows = self._rows(kind)
                page = int(request.query.get("page", "1"))
                pages = max(1, -(-len(rows) // PAGE))
                return web.json_response(
                    {"data": rows[(page - 1) * PAGE : page * PAGE], "page": page, "pages": pages}
                )

            return handler

        def _rows(self, kind: str) -> list[dict[str, Any]]:
            cache = self.__dict__.setdefault("_cache", {})
            if kind not in cache:
                cache[kind] = list(getattr(self, kind).values())
            return cache[kind]  # type: ignore[no-any-return]

        def index(self) -> None:
            self.__dict__["_cache"] = {}
            by_course: dict[int, list[dict[str, Any]]] = {}
            for (course, _), row in self.enrollments.items():
                by_course.setdefault(course, []).append(row)
            self.__dict__["_by_course"] = by_course

        async def _enrollments(self, request: web.Request) -> web.Response:
            self._need("enrollments:read")
            course = int(request.query["course"])
            if course not in self.courses:
                return web.json_response({"error": "no such course"}, status=404)
            return web.json_response({"data": self.__dict__["_by_course"].get(course, [])})

    users, courses, target = USERS * scale, COURSES * scale, PROGRESSIONS * scale
    sim = IndexedToySimulator(users=users, courses=courses, enrollments=0, seed=seed, latency=latency)
    rng = random.Random(seed)
    # Exactly `target` distinct (course, user) pairs: the constructor draws with replacement.
    while len(sim.enrollments) < target:
        c, u = rng.randint(1, courses), rng.randint(1, users)
        sim.enrollments.setdefault((c, u), {"course": c, "user": u, "done": 0})
    for key in sorted(sim.enrollments):
        if rng.random() < 0.4:
            sim.enrollments[key]["done"] = 1_710_000_000 + key[1]
    sim.enrollments = dict(sorted(sim.enrollments.items()))
    sim.index()
    return sim


def mutate(sim: Any, seed: int) -> dict[str, int]:
    """1% of each kind edited, 1% removed."""
    rng = random.Random(seed + 1)
    counts: dict[str, int] = {}
    users = sorted(sim.users)
    share = max(1, len(users) // 100)
    picked = rng.sample(users, 2 * share)
    for u in picked[:share]:
        sim.users[u]["email"] = f"moved{u}@toy.example"
    for u in picked[share:]:
        del sim.users[u]
    counts["users_edited"] = counts["users_removed"] = share
    courses = sorted(sim.courses)
    share = max(1, len(courses) // 100)
    picked = rng.sample(courses, 2 * share)
    for c in picked[:share]:
        sim.courses[c]["title"] += " (2nd edition)"
    removed_courses = set(picked[share:])
    for c in removed_courses:
        del sim.courses[c]
    counts["courses_edited"] = counts["courses_removed"] = share
    pairs = sorted(k for k in sim.enrollments if k[0] not in removed_courses)
    share = max(1, len(pairs) // 100)
    picked = rng.sample(pairs, 2 * share)
    for key in picked[:share]:
        sim.enrollments[key]["done"] = 0 if sim.enrollments[key]["done"] else 1_720_000_000
    for key in picked[share:]:
        del sim.enrollments[key]
    counts["progressions_edited"] = counts["progressions_removed"] = share
    counts["progressions_of_removed_courses"] = sum(1 for k in sim.enrollments if k[0] in removed_courses)
    sim.index()
    return counts


async def serve(scale: int, seed: int, latency: float) -> None:
    sim = build_simulator(scale, seed, latency)
    loop = asyncio.get_running_loop()
    async with sim:
        print(json.dumps({"config": sim.connect_config, "enrollments": len(sim.enrollments)}), flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "quit":
                return
            if line.strip() == "mutate":
                print(json.dumps(mutate(sim, seed)), flush=True)
            elif line.strip() == "calls":
                print(json.dumps({"calls": sim.calls}), flush=True)


# -- the measuring process ----------------------------------------------------------------------------


def describe(label: str, report: SyncReport) -> str:
    return f"{label}: {report.duration_s:.2f} s, {report.calls} calls\n{report.summary_table()}"


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--serve",
        "--scale", str(args.scale), "--seed", str(args.seed), "--latency", str(args.latency),
    ]  # fmt: skip
    async with SimulatorProcess(command, timeout=None, interactive=True) as simulator:
        return await _measure(args, simulator, simulator.started)


async def _measure(
    args: argparse.Namespace, simulator: SimulatorProcess, started: dict[str, Any]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, bench_store(args.db or str(Path(tmp) / "sync.sqlite")) as db:
        config = {**started["config"], "calls_per_second": args.calls_per_second}
        baseline_rss = peak_rss_mb()
        async with lmsconnect.connect("toylms", **config) as lms, open_store(db) as store:
            first = await sync(lms, store, batch_size=args.batch_size)
            rss_after_first = peak_rss_mb()
            mutations = json.loads(await simulator.ask("mutate"))
            second = await sync(lms, store, batch_size=args.batch_size)
            floor = lms.http.read_budget.floor_seconds(first.calls)
        size_mb = await store_mb(db)
    records_first = sum(m.read for m in first.models.values())
    return {
        "store": "postgresql" if is_postgres_url(db) else "sqlite",
        "connector": "toylms",
        "scale": args.scale,
        "users": USERS * args.scale,
        "courses": COURSES * args.scale,
        "progressions": started["enrollments"],
        "records_first_sync": records_first,
        "first_sync_s": round(first.duration_s, 3),
        "second_sync_s": round(second.duration_s, 3),
        "changes_first_sync": sum(first.totals.values()),
        "changes_second_sync": sum(second.totals.values()),
        "second_sync_changes_by_kind": second.totals,
        "mutations": mutations,
        "store_writes_first_sync": first.store_writes,
        "store_s_first_sync": round(first.store_s, 3),
        "store_writes_second_sync": second.store_writes,
        "store_s_second_sync": round(second.store_s, 3),
        "store_writes_per_s": round(first.store_writes / first.store_s) if first.store_s else None,
        "records_per_s_first_sync": round(records_first / first.duration_s),
        "api_calls_first_sync": first.calls,
        "api_calls_second_sync": second.calls,
        "rate_floor_s": round(floor, 3),
        "calls_per_second": args.calls_per_second,
        "db_mb": round(size_mb, 1),
        "rss_before_mb": round(baseline_rss, 1),
        "rss_after_first_mb": round(rss_after_first, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        # The core caches make_id (an LRU of up to 65,536 ids): bounded, but it fills as tenants grow.
        "make_id_cache_entries": _id_cache_entries(),
        "_reports": [describe("first sync", first), describe("second sync", second)],
    }


# -- stores: a fresh PostgreSQL schema per run, a throwaway server when none is given ----------------------


@contextlib.contextmanager
def bench_store(db: str) -> Iterator[str]:
    """`db` itself for SQLite; for PostgreSQL the URL with a fresh schema, dropped at the end."""
    if not is_postgres_url(db):
        yield db
        return
    import psycopg

    schema = f"lmsconnect_bench_{uuid.uuid4().hex[:10]}"
    try:
        yield f"{db}{'&' if '?' in db else '?'}schema={schema}"
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def store_mb(db: str) -> float:
    if not is_postgres_url(db):
        return (await anyio.Path(db).stat()).st_size / 1e6
    import psycopg

    url, _, schema = db.rpartition("schema=")
    async with await psycopg.AsyncConnection.connect(url.rstrip("?&"), autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        )
        row = await cur.fetchone()
        return int(row[0]) / 1e6 if row else 0.0


@contextlib.contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    """`url`, or a throwaway server's (fsync on) for the duration."""
    if url:
        yield url
        return
    from lmsconnect.testing._postgres import TemporaryPostgres

    with TemporaryPostgres(fsync=True) as started:
        yield started


# -- many connections into one PostgreSQL store, and a consumer ----------------------------------------


async def sync_worker(db: str, config: dict[str, Any], connection: str, batch_size: int) -> None:
    """One of the --concurrent processes: a first sync of its connection; prints its figures."""
    async with lmsconnect.connect("toylms", **config) as lms, open_store(db) as store:
        report = await sync(lms, store, connection=connection, batch_size=batch_size)
    records = sum(m.read for m in report.models.values())
    print(json.dumps({"records": records, "duration_s": report.duration_s, "ok": report.ok}), flush=True)


async def measure_concurrent(args: argparse.Namespace, pg_url: str) -> dict[str, Any]:
    command = [
        sys.executable, __file__, "--serve",
        "--scale", str(args.scale), "--seed", str(args.seed), "--latency", str(args.latency),
    ]  # fmt: skip
    async with SimulatorProcess(command, timeout=None, interactive=True) as simulator:
        config = {**simulator.config, "calls_per_second": args.calls_per_second}
        with bench_store(pg_url) as db:
            seen: list[tuple[int, str, str, str]] = []
            async with open_store(db) as store:  # creates the schema before the workers race to
                done = anyio.Event()

                async def consume() -> None:
                    cursor = 0  # saved after each change, as a consumer does with its own effect
                    while True:
                        finished = done.is_set()
                        async for change in store.changes(since=cursor):
                            seen.append((change.cursor, change.connection, change.id, change.kind.value))
                            cursor = change.cursor
                        if finished:
                            return
                        await anyio.sleep(0.05)

                workers = [
                    [sys.executable, __file__, "--sync-worker", db, json.dumps(config), f"tenant-{n}",
                     str(args.batch_size)]
                    for n in range(args.concurrent)
                ]  # fmt: skip
                results: list[dict[str, Any]] = []
                started = time.monotonic()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(consume)

                    async def work(cmd: list[str]) -> None:
                        done_proc = await anyio.run_process(cmd, stderr=None)
                        results.append(json.loads(done_proc.stdout.decode().strip().splitlines()[-1]))

                    async with anyio.create_task_group() as procs:
                        for cmd in workers:
                            procs.start_soon(work, cmd)
                    wall = time.monotonic() - started
                    done.set()
                log = [(c.cursor, c.connection, c.id, c.kind.value) async for c in store.changes()]
    records = sum(r["records"] for r in results)
    return {
        "concurrent_connections": args.concurrent,
        "concurrent_wall_s": round(wall, 3),
        "concurrent_records": records,
        "records_per_s": round(records / wall),
        "concurrent_changes": len(log),
        "consumer_missed": len(set(log) - set(seen)),
        "consumer_doubled": len(seen) - len(set(seen)),
        "concurrent_ok": all(r["ok"] for r in results),
    }


# -- SQLite and PostgreSQL side by side --------------------------------------------------------------


SIDE_KEYS = ("first_sync_s", "second_sync_s", "changes_second_sync", "store_writes_per_s", "peak_rss_mb")


def run_child(args: argparse.Namespace, db: str, scale: int) -> dict[str, Any]:
    """One measurement in a process of its own (its peak RSS is its own); its --json line."""
    import subprocess

    command = [
        sys.executable, __file__, "--json", "--scale", str(scale), "--db", db, "--seed", str(args.seed),
        "--latency", str(args.latency), "--calls-per-second", str(args.calls_per_second),
        "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare(
    args: argparse.Namespace, pg_url: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """Each store at each scale: the side-by-side rows, and each run's full figures."""
    rows = []
    full: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            for name, db in (("sqlite", str(Path(tmp) / f"sync-{scale}.sqlite")), ("postgresql", pg_url)):
                result = run_child(args, db, scale)
                rows.append({"store": name, "scale": scale, **{k: result[k] for k in SIDE_KEYS}})
                full[(name, scale)] = result
                print(
                    f"{name:<10} {scale:>3}x  first {result['first_sync_s']:>7.2f} s  second "
                    f"{result['second_sync_s']:>7.2f} s  changes {result['changes_second_sync']:>6}  "
                    f"{result['store_writes_per_s']:>7} writes/s  peak RSS {result['peak_rss_mb']:>6.1f} MB",
                    flush=True,
                )
    return rows, full


def _id_cache_entries() -> int | None:
    from lmsconnect._models import make_id

    info = getattr(make_id, "cache_info", None)
    return info().currsize if info is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, default=1, help="tenant size multiplier (1 = 2,000 users)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="simulated latency per call, seconds")
    parser.add_argument("--calls-per-second", type=int, default=2_000, help="the Toy connector's budget")
    parser.add_argument("--batch-size", type=int, default=500, help="records per store transaction")
    parser.add_argument(
        "--db", help="the store: a SQLite path (kept) or a PostgreSQL URL (default: a temporary SQLite file)"
    )
    parser.add_argument("--compare", action="store_true", help="SQLite and PostgreSQL side by side")
    parser.add_argument("--scales", default="1,10", help="the scales --compare runs (default 1,10)")
    parser.add_argument("--pg", help="the PostgreSQL URL for --compare / --concurrent (default: --db if "
                        "it is one, else a throwaway server)")
    parser.add_argument("--concurrent", type=int, default=0, metavar="N",
                        help="N processes syncing N connections into one PostgreSQL store at once")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sync-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.scales = [int(s) for s in args.scales.split(",")]
    if args.serve:
        asyncio.run(serve(args.scale, args.seed, args.latency))
        return
    if args.sync_worker:
        db, config, connection, batch = args.sync_worker
        asyncio.run(sync_worker(db, json.loads(config), connection, int(batch)))
        return
    started = time.monotonic()
    pg_given = args.pg or (args.db if args.db and is_postgres_url(args.db) else None)
    with contextlib.ExitStack() as stack:
        pg_url = ""
        if args.compare or args.concurrent:
            pg_url = stack.enter_context(postgres_server(pg_given))
        if args.compare:
            side, full = compare(args, pg_url)
            # The figures of the store --db names at --scale are one of the runs just made.
            engine = "postgresql" if pg_given and args.db == pg_given else "sqlite"
            result = full.get((engine, args.scale)) or asyncio.run(measure(args))
            result["side_by_side"] = side
        else:
            result = asyncio.run(measure(args))
        if args.concurrent:
            concurrent = asyncio.run(measure_concurrent(args, pg_url))
            print(
                f"{args.concurrent} connections into one PostgreSQL store: {concurrent['records_per_s']} "
                f"records/s over {concurrent['concurrent_wall_s']} s; consumer missed "
                f"{concurrent['consumer_missed']}, doubled {concurrent['consumer_doubled']} of "
                f"{concurrent['concurrent_changes']} changes"
            )
            result.update(concurrent)
    reports = result.pop("_reports", [])
    for text in reports:
        print(text)
    print(
        f"second sync: {result['changes_second_sync']} changes {result['second_sync_changes_by_kind']} "
        f"after {result['mutations']}"
    )
    print(
        f"store: {result['store_writes_per_s']} writes/s; peak RSS {result['peak_rss_mb']} MB "
        f"(before syncing {result['rss_before_mb']} MB); total {time.monotonic() - started:.1f} s"
    )
    print_result(result, as_json=args.json)


if __name__ == "__main__":
    main()
