"""Fixtures for the tests against a real, seeded Moodle 5.0.6+ (PHP 8.2 + PostgreSQL 15 on 127.0.0.1).

The site comes from the ``real-moodle`` package kept next to the checkout (``../shared/real-moodle``, see its
README.md): ``moodle up`` builds it the first time (about 1.5 minutes, installing the missing Debian
packages) and starts it in a second afterwards; ``reset`` puts the seeded data back; ``cron completion``
runs Moodle's completion task. One session-scoped site serves every test here; it is stopped at the end.

Where things are:

- the package: ``$REAL_MOODLE_PEER``, else ``<checkout>/../shared/real-moodle/moodle``, else
  ``/work/shared/real-moodle/moodle`` (the developers' machine, whose worktrees live elsewhere). Missing:
  the tests skip, except under ``CI=true`` (or with ``REAL_MOODLE_PEER`` naming a missing file), where
  they fail, so CI can never go green without them.
- the work directory (about 530 MB, reused across runs): ``$REAL_MOODLE_DIR``, else
  ``/var/tmp/lmsconnect-real-moodle-<checkout hash>`` — outside pytest's temporary folders, and one per
  checkout, so two checkouts testing at once never reset or stop each other's site.

The tests share one site, so they must run in one worker: with pytest-xdist use ``--dist loadgroup``
(they carry ``xdist_group("real_moodle")``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHECKOUT = Path(__file__).resolve().parents[4]
DEVELOPER_PEER = Path("/work/shared/real-moodle/moodle")
_TIMINGS: dict[str, float] = {}


def _peer() -> tuple[Path | None, str]:
    explicit = os.environ.get("REAL_MOODLE_PEER")
    if explicit:
        return Path(explicit), f"REAL_MOODLE_PEER={explicit}"
    candidates = (CHECKOUT.parent / "shared" / "real-moodle" / "moodle", DEVELOPER_PEER)
    found = next((c for c in candidates if c.is_file()), None)
    return found, " or ".join(str(c) for c in candidates)


def _workdir() -> str:
    default = "/var/tmp/lmsconnect-real-moodle-" + hashlib.sha1(str(CHECKOUT).encode()).hexdigest()[:8]
    return os.environ.get("REAL_MOODLE_DIR") or default


class RealMoodle:
    """One real Moodle work directory, driven through the package's ``moodle`` script."""

    def __init__(self, script: Path, workdir: str) -> None:
        self.script = script
        self.workdir = workdir
        self.base_url = ""
        self.token = ""
        # Unknown until reset: an earlier run may have left writes behind.
        self.dirty = True

    def run(self, *args: str, timeout: float = 300) -> str:
        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(self.script), *args, "--dir", self.workdir],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        _TIMINGS[args[0]] = _TIMINGS.get(args[0], 0.0) + time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"moodle {' '.join(args)} --dir {self.workdir} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def up(self) -> None:
        # The first build takes about 1.5 minutes (longer on a busy machine); later starts about a second.
        try:
            out = self.run("up", timeout=1800)
        except RuntimeError:
            # Once more: a fresh machine's own apt run (unattended upgrades) can hold the apt lock that the
            # package's `apt-get update` needs, and a failed `up` cleans up after itself.
            time.sleep(30)
            out = self.run("up", timeout=1800)
        info = json.loads(out.splitlines()[-1])
        self.base_url, self.token = info["base_url"], info["token"]

    @property
    def connect_config(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "token": self.token}

    def reset(self) -> None:
        """Back to the seeded state (1–4 s)."""
        self.run("reset")
        self.dirty = False

    def cron_completion(self) -> None:
        """Moodle's completion task twice, 2 s apart: what cron does within about two minutes."""
        self.run("cron", "completion")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): keep these tests in one pytest-xdist worker")


@pytest.fixture(scope="session")
def real_moodle() -> Iterator[RealMoodle]:
    """The running, seeded real Moodle of this session (stopped when the session ends)."""
    script, where = _peer()
    if script is None or not script.is_file():
        message = f"the real-Moodle package is not there ({where})"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes") or os.environ.get("REAL_MOODLE_PEER"):
            pytest.fail(f"{message}: these tests must run here, not skip", pytrace=False)
        pytest.skip(f"{message}; set REAL_MOODLE_PEER to run the real-Moodle tests")
    site = RealMoodle(script, _workdir())
    site.up()
    try:
        yield site
    finally:
        site.run("down", timeout=120)


@pytest.fixture
def seeded_moodle(real_moodle: RealMoodle) -> RealMoodle:
    """The seeded site, for tests that only read (reset only when an earlier test wrote)."""
    if real_moodle.dirty:
        real_moodle.reset()
    return real_moodle


@pytest.fixture
def fresh_moodle(real_moodle: RealMoodle) -> RealMoodle:
    """The seeded site, for a test that writes (the next test gets it reset)."""
    if real_moodle.dirty:
        real_moodle.reset()
    real_moodle.dirty = True
    return real_moodle


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TIMINGS:
        spent = ", ".join(f"{verb} {seconds:.1f} s" for verb, seconds in _TIMINGS.items())
        terminalreporter.write_line(f"real Moodle ({_workdir()}): {spent}")
