"""The Moodle connector's two progression reads side by side: per-user calls (default) and the custom report.

    python benchmarks/moodle_full_read.py --json
    python benchmarks/moodle_full_read.py --scales 0.1,1,5        # peak RSS as the site grows

Reads every course progression of a `MoodleSimulator` with 2,000 users, 200 courses and 20,000 enrolments
(the reference tenant; ``--scales`` multiplies all three) and 50 ms of latency per call, twice: with the
default read (``core_enrol_get_enrolled_users`` per course, ``core_enrol_get_users_courses`` per user,
``core_completion_get_course_completion_status`` per completed progression) and with
``progressions_via_report`` (``core_reportbuilder_retrieve_report`` per page of a custom report on the
"Course participants" source, which the simulator holds as an administrator would set it up).

The simulator runs in a process of its own, like a remote site, and so does each read: ``peak_rss_mb`` is
the reading process's alone, and stays flat whatever the site size when the read streams. Records are not
kept; each read writes (id, status, completed_at to the minute) per progression to a file, and
``same_progressions`` is true when both reads gave the same progressions, statuses and completion times to
the minute (the report's precision). One difference is accepted, and counted in ``accepted_differences``:
a learner active in a *hidden* course whose completed activities all failed is IN_PROGRESS by default
(Moodle's completion criteria, the only detail the default read has there) and ENROLLED in the report
(Moodle's progress, which leaves failed activities out).

With a real Moodle from ``../shared/real-moodle`` (``--real-moodle-dir``, default ``$REAL_MOODLE_DIR``, else
``/var/tmp/lmsconnect-real-moodle``), running, the same two reads run against it too (the small seeded
site: the figure is the wall time, not a throughput); the custom report is created there first, with the
test setup script, when it is missing. Without one that part is skipped with a note.

Opt-in reads show the price of what costs extra calls (``--paths default,report,scores,items,categories``):
``scores`` is the default read with ``progression_scores`` (``gradereport_user_get_grade_items`` per active
progression), ``items`` reads the on-request model ``course_items`` (``core_course_get_contents`` per
course), ``categories`` reads course revisions with ``course_categories`` (one ``core_course_get_categories``
call) beside ``revisions``, the same read without it. Each reports its calls and wall time like the others.

The last line of ``--json`` output is one JSON object with ``default_calls``, ``report_calls``,
``default_wall_s``, ``report_wall_s``, ``same_progressions``, ``call_ratio`` and, per path and scale, the
calls, wall time, records/s and peak RSS. Target: ``call_ratio`` (default calls / report calls) at least 20
with ``same_progressions`` true. Exit status 0 when that holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _common, also when a test loads this by path
from _common import SimulatorProcess, add_tenant_arguments, peak_rss_mb, print_result

HERE = Path(__file__).resolve()
CHECKOUT = HERE.parents[1]
REPORT_NAME = "lmsconnect progressions"
SETUP_PHP = CHECKOUT / "plugins" / "moodle" / "tests" / "real_moodle" / "progressions_report.php"
PATHS = ("default", "report")
OPT_IN = ("scores", "items", "revisions", "categories")
"""Reads run only when --paths names them: what the options and the on-request model cost."""


# -- the simulator's process ------------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    """Run the simulator with the report set up; print its config; stop when stdin closes."""
    from lmsconnect_moodle.testing import MoodleSimulator

    sim = MoodleSimulator(
        users=args.users,
        courses=args.courses,
        enrollments=args.enrollments,
        seed=args.seed,
        latency=args.latency,
    )
    sim.add_report(REPORT_NAME)
    async with sim:
        hidden = sorted(c.id for c in sim.site.iter_courses() if not c.visible and not c.is_site)
        print(json.dumps({"config": sim.connect_config, "hidden_courses": hidden}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print(json.dumps({"calls": sim.calls, "calls_by_function": dict(sim.calls_by_function)}), flush=True)


# -- one read, in a process of its own --------------------------------------------------------------------


def _minute(value: Any) -> str | None:
    return value.replace(second=0, microsecond=0).isoformat() if value is not None else None


async def read(args: argparse.Namespace, out: TextIO) -> dict[str, Any]:
    """Read with one path (progressions, or an opt-in read); write one line per record to ``out``."""
    import lmsconnect

    config = json.loads(args.config_json)
    if args.read == "report":
        config |= {"progressions_via_report": REPORT_NAME, "report_timezone": args.report_timezone}
    if args.read == "scores":
        config |= {"progression_scores": True}
    if args.read == "categories":
        config |= {"course_categories": True}
    records = 0
    began = time.perf_counter()
    model = {"items": "course_items", "revisions": "course_revisions", "categories": "course_revisions"}
    async with lmsconnect.connect("moodle", **config, concurrency=args.concurrency) as lms:
        if args.read in model:
            async for record in lms.list(model[args.read]):
                records += 1
                out.write(json.dumps([record.remote_id]) + "\n")
        else:
            async for p in lms.list("course_progressions"):
                records += 1
                completed = (
                    _minute(p.completed_at) if p.status is lmsconnect.ProgressionStatus.COMPLETED else None
                )
                out.write(json.dumps([p.remote_id, p.status.value if p.status else None, completed]) + "\n")
        calls = lms.stats.calls
    wall = time.perf_counter() - began
    return {
        "calls": calls,
        "records": records,
        "wall_s": round(wall, 3),
        "records_per_s": round(records / wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run_read(
    path: str, config: dict[str, Any], out: Path, args: argparse.Namespace, timezone: str = "UTC"
) -> Any:
    command = [
        sys.executable,
        str(HERE),
        "--read",
        path,
        "--config-json",
        json.dumps(config),
        "--out",
        str(out),
        "--concurrency",
        str(args.concurrency),
        "--report-timezone",
        timezone,
    ]
    env = dict(os.environ)
    if args.reader_code:
        code = Path(args.reader_code).resolve()
        env["PYTHONPATH"] = os.pathsep.join([str(code), str(code / "plugins" / "moodle")])
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the {path} read failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def compare(default: Path, report: Path, hidden: set[int]) -> dict[str, Any]:
    """Same progressions, statuses and completion minutes; the accepted difference counted apart."""
    a = {row[0]: row[1:] for row in map(json.loads, default.read_text().splitlines())}
    b = {row[0]: row[1:] for row in map(json.loads, report.read_text().splitlines())}
    different = [k for k in a.keys() & b.keys() if a[k] != b[k]]
    accepted = [
        k
        for k in different
        if a[k][0] == "IN_PROGRESS" and b[k][0] == "ENROLLED" and int(k.split(":")[0]) in hidden
    ]
    return {
        "progressions": len(a),
        "only_default": len(a.keys() - b.keys()),
        "only_report": len(b.keys() - a.keys()),
        "different": len(different) - len(accepted),
        "accepted_differences": len(accepted),
        "same": a.keys() == b.keys() and len(different) == len(accepted),
        "examples": [(k, a[k], b[k]) for k in sorted(set(different) - set(accepted))[:5]],
    }


# -- the scenario -----------------------------------------------------------------------------------------


async def simulated(
    args: argparse.Namespace, scale: float, paths: tuple[str, ...], work: Path
) -> dict[str, Any]:
    sizes = {
        "users": max(1, round(args.users * scale)),
        "courses": max(1, round(args.courses * scale)),
        "enrollments": max(1, round(args.enrollments * scale)),
    }
    command = [sys.executable, str(HERE), "--serve", "--latency", str(args.latency), "--seed", str(args.seed)]
    for name, value in sizes.items():
        command += [f"--{name}", str(value)]
    result: dict[str, Any] = {"scale": scale, **sizes}
    async with SimulatorProcess(command, interactive=True) as sim:
        for path in paths:
            result[path] = await asyncio.to_thread(
                run_read, path, sim.config, work / f"{scale}-{path}.jsonl", args
            )
        hidden = set(sim.started["hidden_courses"])
    if set(PATHS) <= set(paths):
        result["comparison"] = compare(
            work / f"{scale}-default.jsonl", work / f"{scale}-report.jsonl", hidden
        )
    return result


def real_site(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Both reads against a running real Moodle (its seeded site), or why not."""
    peer = Path(os.environ.get("REAL_MOODLE_PEER", CHECKOUT.parent / "shared" / "real-moodle" / "moodle"))
    if not peer.is_file():
        peer = Path("/work/shared/real-moodle/moodle")
    workdir = Path(args.real_moodle_dir)
    if not peer.is_file() or not (workdir / ".real-moodle-workdir").is_file():
        return {
            "skipped": f"no real Moodle (package {peer}, work directory {workdir}): see ../shared/real-moodle"
        }
    env = subprocess.run(["bash", str(peer), "env", "--dir", str(workdir)], capture_output=True, text=True)
    if env.returncode != 0:
        return {"skipped": f"moodle env failed: {env.stderr.strip()[-300:]}"}
    info = json.loads(env.stdout.splitlines()[-1])
    config = {"base_url": info["base_url"], "token": info["token"]}
    try:
        _ws(config, "core_webservice_get_site_info")
    except OSError as exc:
        return {"skipped": f"the real site does not answer (start it with: moodle up --dir {workdir}): {exc}"}
    if not _has_report(config):
        php = os.environ.get("MOODLE_PHP", "/usr/bin/php8.2")
        made = subprocess.run(
            [
                php,
                "-d",
                "memory_limit=512M",
                str(SETUP_PHP),
                f"--moodle={workdir / 'moodle'}",
                f"--name={REPORT_NAME}",
            ],
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            return {"skipped": f"could not create the report: {made.stderr.strip()[-300:]}"}
    timezone = _token_user_timezone(config)
    result: dict[str, Any] = {"base_url": info["base_url"]}
    for path in PATHS:
        result[path] = run_read(path, config, work / f"real-{path}.jsonl", args, timezone)
    result["comparison"] = compare(work / "real-default.jsonl", work / "real-report.jsonl", set())
    return result


def _ws(config: dict[str, Any], function: str, **params: Any) -> Any:
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({"wstoken": config["token"], **params}).encode()
    url = f"{config['base_url']}/webservice/rest/server.php?wsfunction={function}&moodlewsrestformat=json"
    with urllib.request.urlopen(url, data=body, timeout=60) as answer:
        return json.loads(answer.read())


def _has_report(config: dict[str, Any]) -> bool:
    listed = _ws(config, "core_reportbuilder_list_reports", perpage=100)
    return isinstance(listed, dict) and any(r.get("name") == REPORT_NAME for r in listed.get("reports", []))


def _token_user_timezone(config: dict[str, Any]) -> str:
    userid = _ws(config, "core_webservice_get_site_info")["userid"]
    users = _ws(config, "core_user_get_users_by_field", field="id", **{"values[0]": userid})
    zone = str(users[0].get("timezone", "99")) if users else "99"
    return "Europe/London" if zone == "99" else zone  # 99: the site's zone, Europe/London on the seeded site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_tenant_arguments(parser)
    parser.add_argument("--concurrency", type=int, default=16, help="connector concurrency (config)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--scales", default="1", help="site sizes to read, as multiples of the tenant: 0.1,1,5"
    )
    parser.add_argument("--paths", default="default,report", help="which reads: default, report or both")
    parser.add_argument(
        "--real-moodle-dir", default=os.environ.get("REAL_MOODLE_DIR", "/var/tmp/lmsconnect-real-moodle")
    )
    parser.add_argument("--no-real", action="store_true", help="skip the real-site part")
    parser.add_argument(
        "--reader-code",
        help="read with the lmsconnect and lmsconnect_moodle of another checkout (e.g. an export of main), "
        "to compare a change with what came before; the simulator stays this checkout's",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line, last")
    # Internal: the simulator's process and the reading processes.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--read", choices=PATHS + OPT_IN, help=argparse.SUPPRESS)
    parser.add_argument("--config-json", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--report-timezone", default="UTC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args))
        return 0
    if args.read:
        with open(args.out, "w") as out:
            print(json.dumps(asyncio.run(read(args, out))))
        return 0

    paths = tuple(p for p in PATHS + OPT_IN if p in args.paths.split(","))
    work = Path(tempfile.mkdtemp(prefix="moodle_full_read-"))
    try:
        scales = [asyncio.run(simulated(args, float(s), paths, work)) for s in args.scales.split(",")]
        real = {"skipped": "--no-real"} if args.no_real else real_site(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reference = next((s for s in scales if s["scale"] == 1.0), scales[0])
    result: dict[str, Any] = {
        "benchmark": "moodle_full_read",
        "latency_s": args.latency,
        "concurrency": args.concurrency,
    }
    for path in paths:
        figures = reference[path]
        result |= {f"{path}_{k}": v for k, v in figures.items()}
    if set(PATHS) <= set(paths):
        comparison = reference["comparison"]
        result["call_ratio"] = round(reference["default"]["calls"] / max(1, reference["report"]["calls"]), 1)
        result["same_progressions"] = comparison["same"] and (
            "comparison" not in real or real["comparison"]["same"]
        )
        result["accepted_differences"] = comparison["accepted_differences"]
    result["peak_rss_mb_by_scale"] = {
        str(s["scale"]): {path: s[path]["peak_rss_mb"] for path in paths} for s in scales
    }
    result["scales"] = scales
    result["real_site"] = real
    if real.get("default") and real.get("report"):
        result["real_default_wall_s"] = real["default"]["wall_s"]
        result["real_report_wall_s"] = real["report"]["wall_s"]
    print_result(result, as_json=args.json, width=24)
    ok = result.get("same_progressions", True) and result.get("call_ratio", 20) >= 20
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
