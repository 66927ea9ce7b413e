"""Long fuzz run: every connector's public API through a hostile proxy, one seed per iteration.

    python benchmarks/fuzz.py --iterations 20               # seeds 1..20, all three connectors
    python benchmarks/fuzz.py --connector moodle --seed 7   # one seed of one connector
    python benchmarks/fuzz.py --iterations 5 --findings fuzz-findings.md --json

Per connector, `lmsconnect.testing.fuzz_connector` starts the simulator, a `HostileProxy` in front of it
and a `WitnessServer` (all on 127.0.0.1), syncs cleanly once, then per seed runs syncs, ``list()`` of
every model, ``check()``, passthrough calls and the actions with about a third of the answers mutated.
It prints per connector: operations, non-LMSConnectError exceptions, hangs, spurious deletions, leaked
credentials, and each distinct failure with a reproducing seed. ``--findings`` writes them as Markdown.
The last line of ``--json`` output is one JSON object with those figures per connector and the peak RSS.
The CI test (tests/test_fuzz.py) runs the same targets with fixed seeds; this script is the long run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmsconnect.testing import FuzzReport, HostileProxy, fuzz_connector

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when a test loads this by path
from _common import peak_rss_mb, print_result

#: Per connector: a small tenant (paged where the connector pages by config), fast asynchronous
#: processing, and the raw calls for passthrough. The CI test and the long run share this table.
TARGETS: Mapping[str, Mapping[str, Any]] = {
    "talentlms": {
        # The plan's hourly budget (2,000 calls) would end a long run in RateLimited after ~25 seeds.
        "simulator_options": {"users": 30, "courses": 4, "enrollments": 50, "seed": 3, "hourly_limit": 10**9},
        "connect_options": {"page_size": 8},
        "passthrough": [("GET", "/v1/users", {}), ("GET", "/v1/courses", {})],
    },
    "360learning": {
        "simulator_options": {
            "users": 30, "courses": 4, "enrollments": 50, "seed": 3, "processing_delay": 0.0,
        },
        "connect_options": {"poll_interval_s": 0.02, "upsert_timeout_s": 5.0},
        "passthrough": [("GET", "/api/v2/users", {}), ("GET", "/api/v2/courses", {})],
    },
    "moodle": {
        "simulator_options": {"users": 30, "courses": 4, "enrollments": 50, "seed": 3},
        "connect_options": {},
        "passthrough": [
            ("POST", "core_webservice_get_site_info", {}), ("GET", "/webservice/rest/server.php", {}),
        ],
    },
}  # fmt: skip


async def run_all(
    connectors: Sequence[str],
    seeds: Sequence[int],
    *,
    timeout: float,
    giant_bytes: int,
    mutations: Sequence[str] | None = None,
    rate: float = 1 / 3,
) -> dict[str, FuzzReport]:
    reports = {}
    for slug in connectors:
        reports[slug] = await fuzz_connector(
            slug, seeds=seeds, op_timeout_s=timeout, giant_bytes=giant_bytes, mutations=mutations,
            rate=rate, **TARGETS[slug],
        )
    return reports


def findings_markdown(
    reports: Mapping[str, FuzzReport], *, command: str, revision: str, peak_rss: float, giant_mb: int
) -> str:
    """The scoreboard: per connector the counts, then every distinct failure with one reproducing seed."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Fuzz findings (hostile proxy)",
        "",
        f"Updated {now} from `{command}` on {revision}.",
        "Reproduce one: rerun the command above with `--connector SLUG --mutation-log FILE` (the run is",
        "deterministic; each seed starts from the state the earlier seeds left, so keep `--seed` and",
        "`--iterations`), or try `--seed N --iterations 1`; `--mutations NAME` keeps one kind of mutation.",
        "Operations: `list(model)`, `check()`,",
        "`passthrough(...)`, the actions, `sync` / `sync again`. A `sync/<model>` exception is a model the",
        "sync failed with a Python error (sync keeps no traceback): the same bug shows under `list(model)`.",
        "Mutations met are those the proxy applied during the operation, the latest (likeliest cause) last;",
        "with concurrent reads an earlier operation's leftover request can land in the next one.",
        "",
        f"Peak RSS of the whole run: {peak_rss:,.0f} MB (giant bodies of {giant_mb} MB were streamed at it).",
        "",
        "| connector | operations | non-LMSConnectError | hangs | spurious deletions | leaked credentials "
        "| check() raised |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for slug, r in reports.items():
        out.append(
            f"| {slug} | {r.operations} | {r.non_lmsconnect_errors} | {r.hangs} | {r.spurious_deletions} "
            f"| {r.leaks} | {r.check_raised} |"
        )
    kinds = {
        "exception": "Exceptions other than LMSConnectError",
        "hang": "Hangs",
        "spurious_deletion": "Spurious deletions",
        "leak": "Credentials seen by the witness",
        "check_raised": "check() raised",
        "held_deletion": "Deletions held by the store's mass-deletion guard (not failures: a hostile answer "
        "passed as a complete read, and only the guard kept it from deleting)",
    }
    for slug, r in reports.items():
        out += ["", f"## {slug}", ""]
        if r.clean and not r.held:
            out.append("Nothing found.")
            continue
        listed = [*r.sorted_failures(), *sorted(r.held.values(), key=lambda f: (-f.count, f.operation))]
        for kind, title in kinds.items():
            found = [f for f in listed if f.kind == kind]
            if not found:
                continue
            out += [f"### {title}", "",
                    "| count | type | where | operation | seed | mutations met (latest last) | message |",
                    "|---:|---|---|---|---:|---|---|"]
            for f in found:
                met = "<br>".join(m.replace("|", "\\|") for m in f.mutations) or "-"
                msg = f.message.replace("|", "\\|").replace("\n", " ")
                out.append(
                    f"| {f.count} | `{f.type}` | `{f.location}` | {f.operation} | {f.seed} | {met} | {msg} |"
                )
            out.append("")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connector", action="append", choices=sorted(TARGETS), help="default: all")
    parser.add_argument("--iterations", type=int, default=10, help="seeds per connector (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per operation before a hang")
    parser.add_argument("--giant-mb", type=int, default=320, help="size of a giant body (default 320 MB)")
    parser.add_argument("--rate", type=float, default=1 / 3,
                        help="share of answers mutated (default 1/3; lower reaches deeper code paths)")
    parser.add_argument("--mutations", action="append", choices=sorted(HostileProxy.MUTATIONS),
                        help="only these mutations (repeatable; default: all)")
    parser.add_argument("--mutation-log", type=Path, help="write every operation and mutation applied here")
    parser.add_argument("--findings", type=Path, help="write the findings as Markdown here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    connectors = args.connector or sorted(TARGETS)
    seeds = list(range(args.seed, args.seed + args.iterations))
    started = time.monotonic()
    reports = asyncio.run(
        run_all(connectors, seeds, timeout=args.timeout, giant_bytes=args.giant_mb * 2**20,
                mutations=args.mutations, rate=args.rate)
    )
    wall = time.monotonic() - started
    for report in reports.values():
        print(report.summary(), flush=True)
    if args.mutation_log:
        lines = [line for slug, r in reports.items() for line in (f"== {slug}", *r.applied)]
        args.mutation_log.write_text("\n".join(lines) + "\n")
    if args.findings:
        root = Path(__file__).resolve().parents[1]
        try:
            git = ["git", "-C", str(root)]
            branch = subprocess.run([*git, "branch", "--show-current"], capture_output=True, text=True)
            commit = subprocess.run([*git, "describe", "--always", "--dirty"], capture_output=True, text=True)
            revision = f"branch {branch.stdout.strip() or '(detached)'} at {commit.stdout.strip()}"
        except OSError:
            revision = "(unknown revision)"
        command = "python benchmarks/fuzz.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.findings.write_text(
            findings_markdown(
                reports, command=command, revision=revision, peak_rss=peak_rss_mb(), giant_mb=args.giant_mb
            )
        )
    result = {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "connectors": {slug: r.to_dict() for slug, r in reports.items()},
    }
    print_result(result, as_json=args.json, width=None)
    return 0 if all(r.clean for r in reports.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
