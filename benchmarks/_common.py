"""What the benchmarks share: peak RSS, a simulator in a process of its own, the result printing.

The scripts run as ``python benchmarks/<name>.py`` or are loaded by path from a test, so they import this
module after putting their own directory on ``sys.path``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

__all__ = [
    "CLI",
    "SimulatorProcess",
    "add_tenant_arguments",
    "cli_simulator",
    "peak_rss_mb",
    "print_result",
]

# The lmsconnect CLI of this very interpreter (the venv's), whatever is on PATH.
CLI = [sys.executable, "-c", "import sys; from lmsconnect._cli import main; sys.exit(main())"]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    On Linux from ``VmHWM``, which is this program's own: ``ru_maxrss`` survives ``exec``, so a process
    started by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class SimulatorProcess:
    """A simulator in a process of its own, as a remote vendor would be: its CPU time is not spent on the
    event loop being measured.

    The process prints one JSON line first, ``{"config": {...}, ...}``; ``started`` holds it and
    ``config`` its connect config. With ``interactive`` its stdin is a pipe: ``ask`` sends a command line
    and reads the answer line, and leaving the block closes stdin for the process to end by itself;
    otherwise leaving the block terminates it.
    """

    def __init__(
        self, command: Sequence[str], *, timeout: float | None = 120, interactive: bool = False
    ) -> None:
        self.command = list(command)
        self.timeout = timeout
        self.interactive = interactive
        self.started: dict[str, Any] = {}
        self._process: asyncio.subprocess.Process | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.started["config"]  # type: ignore[no-any-return]

    async def __aenter__(self) -> SimulatorProcess:
        self._process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE if self.interactive else None,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            self.started = json.loads(await asyncio.wait_for(self.ask(None), timeout=self.timeout))
        except BaseException:
            await self._end()
            raise
        return self

    async def ask(self, command: str | None) -> str:
        """Send ``command`` (if any) as a line and return the next line the process prints."""
        process = self._process
        assert process is not None and process.stdout is not None
        if command is not None:
            assert process.stdin is not None
            process.stdin.write(f"{command}\n".encode())
            await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process exited")
        return line.decode()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._end()

    async def _end(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if self.interactive:
            assert process.stdin is not None
            process.stdin.close()
        elif process.returncode is None:
            process.terminate()
        await process.wait()


def read_figures(
    *, client_calls: int, records: int, wall: float, floor: float, rejected: int, client_rejected: int
) -> dict[str, Any]:
    """The figures every rate-limited full-read benchmark prints, in its key order."""
    return {
        "client_calls": client_calls,
        "records": records,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "wall_over_floor": round(wall / floor, 3) if floor else None,
        "records_per_s": round(records / wall, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rejected_calls": rejected,
        "client_rejected": client_rejected,
    }


def cli_simulator(slug: str, *, timeout: float = 120, **options: object) -> SimulatorProcess:
    """``lmsconnect simulate <slug> --port 0 --<option> <value>...`` in a process of its own."""
    command = [*CLI, "simulate", slug, "--port", "0"]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return SimulatorProcess(command, timeout=timeout)


def add_tenant_arguments(parser: argparse.ArgumentParser, *, enrollments: str = "enrollments") -> None:
    """The tenant-size and latency options every full-read benchmark takes (2,000 users, 200 courses,
    20,000 enrolments, 50 ms per call); ``enrollments`` names the third option."""
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--courses", type=int, default=200)
    parser.add_argument(f"--{enrollments}", type=int, default=20000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per call")


def print_result(result: Mapping[str, Any], *, as_json: bool, width: int | None = None) -> None:
    """With ``as_json`` the result as one JSON line (the last the script prints); otherwise, given a
    ``width``, one ``key: value`` line per figure."""
    if as_json:
        print(json.dumps(result))
    elif width is not None:
        for key, value in result.items():
            print(f"{key:>{width}}: {value}")
