"""Incremental sync: a first full sync into SQLite, then a second one after 1% of records changed and 1%
were removed.

    python benchmarks/sync_incremental.py --json
    python benchmarks/sync_incremental.py --json --scale 10

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
this process: the sync and the store, not the simulator), and the details behind them. Memory must stay
flat as the tenant grows: compare ``peak_rss_mb`` at ``--scale 1`` and ``--scale 10``. The core's
``make_id`` keeps an LRU cache of up to 65,536 ids; it is bounded, but it fills as the tenant grows (about
25 MB when full), and ``make_id_cache_entries`` shows how full it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

import lmsconnect
from lmsconnect._store import open_store
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
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "sync.sqlite")
        config = {**started["config"], "calls_per_second": args.calls_per_second}
        baseline_rss = peak_rss_mb()
        async with lmsconnect.connect("toylms", **config) as lms, open_store(db) as store:
            first = await sync(lms, store, batch_size=args.batch_size)
            rss_after_first = peak_rss_mb()
            mutations = json.loads(await simulator.ask("mutate"))
            second = await sync(lms, store, batch_size=args.batch_size)
            floor = lms.http.read_budget.floor_seconds(first.calls)
        size_mb = (await anyio.Path(db).stat()).st_size / 1e6
    records_first = sum(m.read for m in first.models.values())
    return {
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
    parser.add_argument("--db", help="keep the SQLite store at this path (default: a temporary file)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.scale, args.seed, args.latency))
        return
    started = time.monotonic()
    result = asyncio.run(measure(args))
    reports = result.pop("_reports")
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
