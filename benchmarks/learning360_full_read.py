"""Full read of a simulated 360Learning company under the vendor's real limits.

    python benchmarks/learning360_full_read.py --json

Reads every model the connector supports (users, course providers, courses, revisions, progressions)
from a `Learning360Simulator` (started with ``lmsconnect simulate`` in a process of its own, like a remote
vendor) with 2,000 users, 200 courses and 20,000 progressions (attempts), 50 ms of
latency per call and 360Learning's limits (50 GET/s, 10 writes/s). The five models stream concurrently;
records are counted, not kept.

``floor_s`` is the least time the API allows: 360Learning pages through a ``Link`` cursor, so the pages of
one list are strictly sequential, and the longest such chain (plus the token call before it) costs one
latency per call; the rate limit adds its own floor when the calls outnumber what 50 GET/s admits. The
last line of ``--json`` output is one JSON object with ``api_calls``, ``records``, ``wall_s``, ``floor_s``,
``records_per_s``, ``peak_rss_mb`` and ``rejected_calls`` (429s the simulator answered). Targets:
``rejected_calls`` 0, ``wall_s`` within 1.2x ``floor_s``. ``--read-roles`` connects with ``read_roles=True``
(users' roles from group memberships: one call for the groups, then one per group), to show its price;
``--read-custom-fields`` with ``read_custom_fields=True`` (one call for the field names, then one per user);
``--read-path-due-dates`` with ``read_path_due_dates=True`` (the path enrollments, 2,000 a page).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

import lmsconnect
from lmsconnect import Course, CourseProgression, CourseProvider, CourseRevision, User
from lmsconnect.plugin import RateWindow

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when a test loads this by path
from _common import add_tenant_arguments, cli_simulator, print_result, read_figures

PAGE = {"users": 500, "courses": 500, "stats": 500, "integrations": 100, "groups": 500}


def floor_seconds(
    counts: dict[str, int], limits: dict[str, float], read_calls: int, latency: float, *,
    roles: bool = False, custom_fields: bool = False, due_dates: bool = False,
) -> float:
    pages = lambda count, size: max(1, math.ceil(count / size))  # noqa: E731 - a local formula
    integrations = pages(counts["integrations"], PAGE["integrations"])
    # With read_roles the users wait for the groups, then (concurrently) each group's first page at least.
    before_users = pages(counts.get("groups", 0), PAGE["groups"]) + 1 if roles else 0
    # With read_custom_fields the users wait for the field names (one page); the per-user calls overlap
    # the pages, so the rate limit is their floor.
    before_users += 1 if custom_fields else 0
    chains = {
        "users": before_users + pages(counts["users"], PAGE["users"]),
        "course_providers": integrations + pages(counts["external_courses"], PAGE["courses"]),
        "courses": integrations + pages(counts["courses"], PAGE["courses"]),
        "course_revisions": pages(counts["courses"], PAGE["courses"]),
        # With read_path_due_dates the progressions wait for the path enrollments (2,000 a page).
        "course_progressions": (pages(counts.get("path_stats", 0), 2000) if due_dates else 0)
        + pages(counts["attempts"], PAGE["stats"]),
    }
    chain_s = (1 + max(chains.values())) * latency
    rate_s = RateWindow(int(limits["read_limit"]), float(limits["rate_window"])).floor_seconds(read_calls)
    return max(chain_s, rate_s)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counts: dict[str, int] = {}
    simulator = cli_simulator(
        "360learning",
        timeout=60,
        users=args.users,
        courses=args.courses,
        enrollments=args.progressions,
        seed=args.seed,
        latency=args.latency,
    )
    async with simulator, aiohttp.ClientSession() as session:
        url = str(simulator.config["base_url"])
        began = time.perf_counter()
        options = {
            "read_roles": args.read_roles,
            "read_custom_fields": args.read_custom_fields,
            "read_path_due_dates": args.read_path_due_dates,
        }
        async with lmsconnect.connect("360learning", **simulator.config, **options) as lms:

            async def count(model: Any) -> None:
                n = 0
                async for _ in lms.list(model):
                    n += 1
                counts[model.model] = n

            await asyncio.gather(
                *(count(m) for m in (User, CourseProvider, Course, CourseRevision, CourseProgression))
            )
            client_calls = lms.stats.calls
            client_rejected = lms.stats.rejected
        wall = time.perf_counter() - began
        async with session.get(f"{url}/_simulator/stats") as response:
            stats = await response.json()
    api_calls = int(stats["calls"])
    reads = api_calls - int(stats["calls_by_route"].get("POST /api/v2/oauth2/token", 0))
    floor = floor_seconds(
        stats["counts"], stats["limits"], reads, args.latency,
        roles=args.read_roles, custom_fields=args.read_custom_fields, due_dates=args.read_path_due_dates,
    )
    records = sum(counts.values())
    return {
        "benchmark": "learning360_full_read",
        "users": args.users,
        "courses": args.courses,
        "progressions": args.progressions,
        "latency_s": args.latency,
        "read_roles": args.read_roles,
        "read_custom_fields": args.read_custom_fields,
        "read_path_due_dates": args.read_path_due_dates,
        "limits": stats["limits"],
        "records_by_model": counts,
        "api_calls": api_calls,
        **read_figures(
            client_calls=client_calls, records=records, wall=wall, floor=floor,
            rejected=int(stats["rejected_calls"]), client_rejected=client_rejected,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_tenant_arguments(parser, enrollments="progressions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--read-roles", action="store_true",
                        help="connect with read_roles=True (roles from group memberships), to show its price")
    parser.add_argument("--read-custom-fields", action="store_true",
                        help="connect with read_custom_fields=True (a call per user), to show its price")
    parser.add_argument("--read-path-due-dates", action="store_true",
                        help="connect with read_path_due_dates=True (path enrollments), to show its price")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line, last")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    print_result(result, as_json=args.json, width=18)
    ok = result["rejected_calls"] == 0 and result["wall_s"] <= 1.2 * result["floor_s"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
