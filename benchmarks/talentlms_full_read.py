"""Full read of a simulated TalentLMS domain under TalentLMS's real rate limits.

    python benchmarks/talentlms_full_read.py --json
    python benchmarks/talentlms_full_read.py --course-items --json   # the price of course_items

Reads every model the connector supports (users, courses, course revisions, course progressions) from a
`TalentLMSSimulator` (started with ``lmsconnect simulate talentlms`` in a process of its own, like a
remote vendor) with 2,000 users, 200 courses and 20,000 enrollments, 50 ms of latency per call and
TalentLMS's limits (200 calls per 5 s, 2,000 per hour). The four models stream concurrently; records are
counted, not kept. ``--course-items`` reads course items (read on request only: one course detail call
per course of their own) as a fifth model, to show what they cost on top.

``api_calls`` counts the calls the simulator received, except ``/v1/ratelimit`` (free in TalentLMS).
``per_pair_api_calls`` is what the same read costs when progress is fetched per enrolled user × course
pair (``/v1/getuserstatusincourse``, as the coverage table's note describes) instead of once per course
detail. ``floor_s`` is the least time the API allows: the 200-per-5-s window's floor for the calls made
(plus the latency of the call that opens the next window), or the longest chain of sequential calls
(the user pages; the course list then a course detail) at one latency each, whichever is larger. The
last line of ``--json`` output is one JSON object. Targets: ``per_pair_api_calls / api_calls`` >= 50,
``rejected_calls`` 0, ``wall_s`` within 1.2x ``floor_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

import lmsconnect
from lmsconnect import Course, CourseItem, CourseProgression, CourseRevision, User
from lmsconnect.plugin import RateWindow

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when a test loads this by path
from _common import add_tenant_arguments, cli_simulator, print_result, read_figures

PAGE_SIZE = 500


def floor_seconds(calls: int, users: int, limits: dict[str, Any], latency: float) -> float:
    user_pages = users // PAGE_SIZE + 1  # the last page is the first short (or empty) one
    chain_s = max(user_pages, 2) * latency
    window = RateWindow(int(limits["burst_limit"]), float(limits["burst_window"]))
    rate_s = window.floor_seconds(calls)
    hourly = RateWindow(int(limits["hourly_limit"]), float(limits["hourly_window"]))
    rate_s = max(rate_s, hourly.floor_seconds(calls))
    return max(chain_s, rate_s + latency if rate_s else 0.0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counts: dict[str, int] = {}
    simulator = cli_simulator(
        "talentlms",
        users=args.users,
        courses=args.courses,
        enrollments=args.enrollments,
        seed=args.seed,
        latency=args.latency,
    )
    async with simulator, aiohttp.ClientSession() as session:
        # Not part of TalentLMS, the stats route sits beside the API root.
        root = str(simulator.config["base_url"]).removesuffix("/api")
        began = time.perf_counter()
        async with lmsconnect.connect("talentlms", **simulator.config, page_size=PAGE_SIZE) as lms:

            async def count(model: Any) -> None:
                n = 0
                async for _ in lms.list(model):
                    n += 1
                counts[model.model] = n

            models: list[Any] = [User, Course, CourseRevision, CourseProgression]
            if args.course_items:
                models.append(CourseItem)
            await asyncio.gather(*(count(m) for m in models))
            client_calls = lms.stats.calls
            client_rejected = lms.stats.rejected
        wall = time.perf_counter() - began
        async with session.get(f"{root}/_simulator/stats") as response:
            stats = await response.json()
    by_route = stats["calls_by_route"]
    api_calls = int(stats["calls"]) - int(by_route.get("GET /v1/ratelimit", 0))
    # The course details read for progressions (course items read their own when asked for).
    details = int(by_route.get("GET /v1/courses/id", 0)) // (2 if args.course_items else 1)
    per_pair = api_calls - details + int(stats["counts"]["enrollments"])
    floor = floor_seconds(api_calls, args.users, stats["limits"], args.latency)
    records = sum(counts.values())
    return {
        "benchmark": "talentlms_full_read",
        "course_items": args.course_items,
        "users": args.users,
        "courses": args.courses,
        "enrollments": args.enrollments,
        "latency_s": args.latency,
        "limits": stats["limits"],
        "records_by_model": counts,
        "calls_by_route": by_route,
        "api_calls": api_calls,
        "per_pair_api_calls": per_pair,
        "call_ratio": round(per_pair / api_calls, 1),
        **read_figures(
            client_calls=client_calls, records=records, wall=wall, floor=floor,
            rejected=int(stats["rejected_calls"]), client_rejected=client_rejected,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_tenant_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--course-items", action="store_true", help="read course items too")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line, last")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print_result(result, as_json=args.json, width=20)
    ok = (
        result["rejected_calls"] == 0
        and result["wall_s"] <= 1.2 * result["floor_s"]
        and result["per_pair_api_calls"] >= 50 * result["api_calls"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
