"""The lmsconnect command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lmsconnect

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "lmsconnect"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "docs" / "examples" / "toylms")}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=ENV, timeout=60)


class TestPlugins:
    def test_lists_installed_connectors(self) -> None:
        """`lmsconnect plugins --json` lists the installed connectors with their distributions."""
        result = run("plugins", "--json")
        rows = {r["slug"]: r for r in json.loads(result.stdout)}
        assert rows["toylms"]["distribution"] == "lmsconnect-toylms"
        assert rows["toylms"]["ok"] is True


class TestCapabilities:
    def test_json_matches_the_table(self) -> None:
        """`capabilities SLUG --json` prints exactly the connector's table."""
        from lmsconnect_toylms import ToyConnector

        result = run("capabilities", "toylms", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == ToyConnector.capabilities.to_dict()

    def test_matrix_has_a_column_per_connector(self) -> None:
        """Without a slug, the matrix shows every loadable connector side by side."""
        result = run("capabilities")
        header = result.stdout.splitlines()[0].split()
        assert "toylms" in header
        assert any(line.startswith("action complete_course") for line in result.stdout.splitlines())

    def test_unknown_slug_is_a_clear_error(self) -> None:
        """An unknown connector exits 2 and says what is installed."""
        result = run("capabilities", "nope")
        assert result.returncode == 2
        assert "no connector 'nope' is installed" in result.stderr
        assert "toylms" in result.stderr


class TestSimulate:
    async def test_prints_config_and_serves_until_terminated(self) -> None:
        """`simulate SLUG --port 0` prints one {"config"} line for connect(), and stops on SIGTERM."""
        proc = await asyncio.create_subprocess_exec(
            *CLI, "simulate", "toylms", "--port", "0", "--users", "3",
            stdout=asyncio.subprocess.PIPE, env=ENV,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            config = json.loads(line)["config"]
            assert config["base_url"].startswith("http://127.0.0.1:")
            async with lmsconnect.connect("toylms", **config) as lms:
                users = [u async for u in lms.list(lmsconnect.User)]
            assert len(users) == 3
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 0


class TestCheck:
    async def test_check_reports_missing_scopes(self) -> None:
        """`check` prints per model the vendor's name of a missing permission and exits 1."""
        from lmsconnect_toylms.testing import ToySimulator

        async with ToySimulator(scopes=("users:read", "courses:read")) as sim:
            proc = await asyncio.create_subprocess_exec(
                *CLI, "check", "toylms", "--config-json", json.dumps(sim.connect_config), "--json",
                stdout=asyncio.subprocess.PIPE, env=ENV,
            )
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        report = json.loads(out)
        assert proc.returncode == 1
        items = {(i["kind"], i["name"]): i for i in report["items"]}
        assert items[("model", "users")]["status"] == "ok"
        assert items[("model", "course_progressions")]["status"] == "missing_permission"
        assert items[("model", "course_progressions")]["permissions"] == ["enrollments:read"]
        assert sim.token not in out.decode()
