"""FUZZ TEST (issue 9, item 7): every connector's public API against hostile vendor answers.

For each connector (talentlms, 360learning, moodle), `lmsconnect.testing.fuzz_connector` puts a
`HostileProxy` between the connector and its simulator (about a third of the answers mutated: dropped
keys, wrong types, nulls, huge numbers and strings, 100,000-level nesting, truncated and invalid bodies,
HTML error pages, wrong content types, giant streamed bodies, cut connections, pages that never advance,
links and redirects to a `WitnessServer` on another port) and runs, per seed: a sync into SQLite, ``list()``
of every supported model, ``check()``, passthrough calls, the supported actions, and a second sync.

Asserted, per connector: only `LMSConnectError` subclasses escape; no operation hangs (each has a
timeout); no ``deleted`` change is recorded (nothing changed upstream after the clean sync); no credential
reaches the witness server; ``check()`` reports remote failures instead of raising them.

Deterministic and bounded for CI: fixed seeds (`SEEDS`), small tenants, a 64 MB giant body; everything on
127.0.0.1. The proxy's draws depend only on the seed, the request and how often that same request came
before (two identical requests in flight at once may swap draws), so a failure names the seed that
reproduces it: ``python benchmarks/fuzz.py --connector SLUG --seed 101 --iterations 4 --timeout 20
--giant-mb 64 --mutation-log log.txt`` replays the CI run and lists each mutation by operation.

Longer local run: ``LMSCONNECT_FUZZ_ITERATIONS=50 pytest tests/test_fuzz.py`` (seeds 1..50), or
``python benchmarks/fuzz.py --iterations 50`` for the counts per connector. The per-connector settings
(`TARGETS`) live in benchmarks/fuzz.py, shared by both.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from lmsconnect.testing import FuzzReport, fuzz_connector

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
#: Fixed CI seeds; LMSCONNECT_FUZZ_ITERATIONS=N runs seeds 1..N instead (local use).
SEEDS = (101, 102, 103, 104)
OP_TIMEOUT_S = 20.0
GIANT_BYTES = 64 * 2**20


def _targets() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("lmsconnect_benchmark_fuzz", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.TARGETS)


TARGETS = _targets()


def _seeds() -> tuple[int, ...]:
    iterations = os.environ.get("LMSCONNECT_FUZZ_ITERATIONS")
    return tuple(range(1, int(iterations) + 1)) if iterations else SEEDS


@functools.cache
def fuzz_report(slug: str) -> FuzzReport:
    """One fuzz run per connector per test session, shared by the assertions below."""
    return asyncio.run(
        fuzz_connector(
            slug, seeds=_seeds(), op_timeout_s=OP_TIMEOUT_S, giant_bytes=GIANT_BYTES, **TARGETS[slug]
        )
    )


@pytest.fixture(params=sorted(TARGETS))
def report(request: pytest.FixtureRequest) -> FuzzReport:
    result = fuzz_report(request.param)
    # The fuzz must have attacked: operations ran and answers were mutated.
    assert result.operations > 0 and sum(result.mutations.values()) > 0, result.summary()
    return result


class TestHostileAnswers:
    def test_only_lmsconnect_errors_escape(self, report: FuzzReport) -> None:
        """No operation of the public API lets anything but an LMSConnectError out for a hostile answer."""
        assert report.non_lmsconnect_errors == 0, report.summary()

    def test_no_operation_hangs(self, report: FuzzReport) -> None:
        """Every operation ends within its timeout, even when a page never advances."""
        assert report.hangs == 0, report.summary()

    def test_no_spurious_deletions(self, report: FuzzReport) -> None:
        """Hostile syncs record no `deleted` change, since nothing was deleted upstream."""
        assert report.spurious_deletions == 0, report.summary()

    def test_check_reports_instead_of_raising(self, report: FuzzReport) -> None:
        """check() reports a hostile answer per item and never raises for it."""
        assert report.check_raised == 0, report.summary()

    def test_no_credential_reaches_another_host(self, report: FuzzReport) -> None:
        """No link, redirect or passthrough URL makes the connector send a credential to another port."""
        assert report.leaks == 0, report.summary()
