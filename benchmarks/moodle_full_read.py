"""Full read of a simulated Moodle 5 site over its web services.

    python benchmarks/moodle_full_read.py --json

Reads every model the Moodle connector supports (users, courses, course revisions, course progressions,
skills, revision skills) from a `MoodleSimulator` with 2,000 users, 200 courses and 20,000 enrolments and
50 ms of latency per call. The six models stream concurrently; records are counted, not kept.

Moodle has no rate limit, so the floor is latency: ``serial_s`` is what the calls would cost one after
another (``api_calls x latency``); ``wall_s`` must be far below it. The last line of ``--json`` output is
one JSON object with ``api_calls``, ``records``, ``wall_s``, ``records_per_s`` and ``peak_rss_mb`` (plus
the calls per web-service function, to see where they go).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from lmsconnect_moodle.testing import MoodleSimulator

import lmsconnect

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when a test loads this by path
from _common import add_tenant_arguments, peak_rss_mb, print_result

MODELS = ("users", "courses", "course_revisions", "course_progressions", "skills", "revision_skills")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sim = MoodleSimulator(
        users=args.users,
        courses=args.courses,
        enrollments=args.enrollments,
        seed=args.seed,
        latency=args.latency,
    )
    counts: dict[str, int] = {}
    async with sim:
        began = time.perf_counter()
        async with lmsconnect.connect(
            "moodle", **sim.connect_config, concurrency=args.concurrency, completion_dates=not args.no_dates
        ) as lms:

            async def count(model: str) -> None:
                n = 0
                async for _ in lms.list(model):
                    n += 1
                counts[model] = n

            await asyncio.gather(*(count(m) for m in MODELS))
            client_calls = lms.stats.calls
        wall = time.perf_counter() - began
    records = sum(counts.values())
    return {
        "benchmark": "moodle_full_read",
        "users": args.users,
        "courses": args.courses,
        "enrollments": len(sim.site.enrolments),
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "completion_dates": not args.no_dates,
        "records_by_model": counts,
        "calls_by_function": dict(sim.calls_by_function.most_common()),
        "api_calls": sim.calls,
        "client_calls": client_calls,
        "records": records,
        "wall_s": round(wall, 3),
        "serial_s": round(sim.calls * args.latency, 3),
        "records_per_s": round(records / wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_tenant_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=16, help="connector concurrency (config)")
    parser.add_argument("--no-dates", action="store_true", help="skip completed_at (completion_dates=False)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line, last")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print_result(result, as_json=args.json, width=18)
    return 0 if result["wall_s"] < result["serial_s"] / 4 else 1


if __name__ == "__main__":
    sys.exit(main())
