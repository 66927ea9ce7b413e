"""Upsert of 250 changed courses on a simulated TalentLMS domain with API v2, counting the calls.

    python benchmarks/talentlms_upsert.py --json

A `TalentLMSSimulator` (in this process; 50 ms of latency per call, TalentLMS's limits, batch tasks that
finish ``--task-seconds`` after they are queued) holds ``--courses`` courses with codes; one
``upsert_courses`` call changes every title, and ``wait_until_visible`` waits until TalentLMS shows them.
v1 has no course edit; with v2 the update costs one course list, ceil(n/100) batch calls, the task polls
and one course list to read the result back. The figures: the calls by route, ``batch_calls``,
``task_polls``, ``read_back_calls``, ``api_calls`` (all but the free ``/v1/ratelimit``) and the wall time.
The last line of ``--json`` output is one JSON object. Target: ``batch_calls == ceil(courses / 100)``,
every item `updated`, ``rejected_calls`` 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from typing import Any

from lmsconnect_talentlms.testing import TalentLMSSimulator

import lmsconnect
from lmsconnect import ItemStatus


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sim = TalentLMSSimulator(
        users=5, courses=0, enrollments=0, latency=args.latency, task_seconds=args.task_seconds
    )
    for n in range(args.courses):
        sim.add_course(name=f"Course {n}", code=f"bench-{n:04d}", description="Before")
    changed = ({"title": f"Course {n} (renamed)", "description": "After"} for n in range(args.courses))
    payload = {"items": [{"origin_id": f"bench-{n:04d}", "course": c} for n, c in enumerate(changed)]}
    async with sim, lmsconnect.connect("talentlms", **sim.connect_config) as lms:
        await lms.resolve_capabilities()  # the once-per-connection v2 probe, counted apart
        probe_calls = sim.calls - sim.calls_by_route["GET /v1/ratelimit"]
        sim.reset_counters()
        began = time.perf_counter()
        accepted = await lms.upsert_courses(payload)
        accepted_s = time.perf_counter() - began
        settled = await lms.wait_until_visible(accepted, timeout_s=120)
        wall = time.perf_counter() - began
    by_route = dict(sim.calls_by_route)
    statuses = {s.value: sum(1 for i in settled.items if i.status is s) for s in ItemStatus}
    return {
        "benchmark": "talentlms_upsert",
        "courses": args.courses,
        "latency_s": args.latency,
        "task_seconds": args.task_seconds,
        "probe_calls": probe_calls,
        "calls_by_route": by_route,
        "batch_calls": by_route.get("POST /v2/batch/courses", 0),
        "task_polls": by_route.get("GET /v2/tasks/id", 0),
        "read_back_calls": by_route.get("GET /v1/courses", 0) - 1,  # the first list finds the courses
        "api_calls": sim.calls - by_route.get("GET /v1/ratelimit", 0),
        "rejected_calls": sim.rejected_calls,
        "accepted_after_s": round(accepted_s, 3),
        "wall_s": round(wall, 3),
        "items": {k: v for k, v in statuses.items() if v},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--courses", type=int, default=250, help="courses to change (default 250)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call (default 0.05)")
    parser.add_argument("--task-seconds", type=float, default=1.0,
                        help="seconds a batch task takes to apply (default 1.0)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line, last")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")
    ok = (
        result["batch_calls"] == math.ceil(args.courses / 100)
        and result["items"] == {"updated": args.courses}
        and result["rejected_calls"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
