"""The lmsconnect command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lmsconnect
import lmsconnect._registry
from lmsconnect._cli import _parser, main

from .test_http_host_errors import UNRESOLVABLE, resolver_says_no_such_name

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


class TestSyncProgress:
    async def piped_sync(self, sim: Any, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
        creds = tmp_path / "creds.json"
        creds.write_text(json.dumps({"config": sim.connect_config}))
        proc = await asyncio.create_subprocess_exec(
            *CLI, "sync", "toylms", "--config-json", f"@{creds}", "--db", str(tmp_path / "s.sqlite"), *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=ENV,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def test_piped_sync_prints_periodic_lines(self, tmp_path: Path) -> None:
        """Piped, `sync` writes a line per model still reading every --progress-every seconds, with its
        records, pages of the vendor's page count, calls and an ETA; then each model's end."""
        from lmsconnect_toylms.testing import ToySimulator

        # Five pages of 0.4 s: an ETA is shown from the first second until the last page.
        async with ToySimulator(users=250, courses=3, enrollments=10, latency=0.4) as sim:
            code, out, err = await self.piped_sync(sim, tmp_path, "--models", "users",
                                                   "--progress-every", "0.3")
        assert code == 0, err
        periodic = [line for line in out.splitlines() if line.startswith("[") and " users " in line]
        assert len(periodic) >= 2, out
        assert all(" reading " in line and " call" in line for line in periodic), out
        assert any(f"page {n} of 5" in line for line in periodic for n in (1, 2, 3, 4)), out
        assert any(" ETA " in line for line in periodic), out
        end = next(line for line in out.splitlines() if line.startswith("users") and "complete" in line)
        assert "250 read" in end and "5 calls" in end and "+250 created" in end
        assert "HTTP calls" in out and "\x1b[" not in out

    async def test_json_output_is_one_object_of_the_same_shape(self, tmp_path: Path) -> None:
        """`sync --json` piped prints only its one JSON object, with the keys it always had."""
        from lmsconnect_toylms.testing import ToySimulator

        async with ToySimulator(users=60, latency=0.2) as sim:
            code, out, err = await self.piped_sync(sim, tmp_path, "--json", "--progress-every", "0.1")
        assert code == 0, err
        assert len(out.splitlines()) == 1
        report = json.loads(out)
        assert set(report) == {"connection", "run_id", "resumed", "ok", "calls", "duration_s", "store_writes",
                               "totals", "held_deletions", "codes", "error_codes", "models"}
        assert set(report["models"]["users"]) == {
            "model", "status", "read", "created", "updated", "deleted", "unchanged", "held_deletions",
            "error", "detail", "error_code", "retry_after", "code"}

    async def test_a_terminal_gets_a_live_display(self, tmp_path: Path) -> None:
        """On a terminal the progress is redrawn in place, with the calls and time so far."""
        import pty

        from lmsconnect_toylms.testing import ToySimulator

        creds = tmp_path / "creds.json"
        controller, terminal = pty.openpty()

        def read_all() -> bytes:
            chunks = []
            while True:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # EIO: the process closed the terminal
                    return b"".join(chunks)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

        async with ToySimulator(users=130, latency=0.2) as sim:
            creds.write_text(json.dumps({"config": sim.connect_config}))
            proc = await asyncio.create_subprocess_exec(
                *CLI, "sync", "toylms", "--config-json", f"@{creds}", "--db", str(tmp_path / "s.sqlite"),
                stdout=terminal, stderr=asyncio.subprocess.DEVNULL, env=ENV,
            )
            os.close(terminal)
            try:
                shown = (await asyncio.wait_for(asyncio.to_thread(read_all), 120)).decode()
            finally:
                os.close(controller)
            assert await asyncio.wait_for(proc.wait(), 60) == 0
        assert "\x1b[" in shown and "\x1b[2K" in shown  # redrawn in place
        assert "HTTP calls, " in shown and "page 3 of 3" in shown
        assert "course_progressions" in shown and "total" in shown


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


# -- mistakes: one line, a documented exit code, never a traceback ------------------------------------


def main_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exits (--help, --version, usage errors)
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, out: str, err: str, expected: str, exit_code: int = 2) -> None:
    assert code == exit_code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err and out == ""


requires = {
    slug: pytest.mark.skipif(
        slug not in lmsconnect._registry.registry.slugs(), reason=f"{slug} is not installed"
    )
    for slug in ("talentlms", "moodle")
}


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


MISTAKES = {
    # The README's own example with its placeholder domain: an IDNA error before, not a URL.
    "placeholder-domain": (
        ["check", "toylms", "--config-json", '{"base_url": "https://.../api", "token": "..."}'],
        "is not a valid http(s) URL",
    ),
    "missing-config-file": (
        ["check", "toylms", "--config-json", "@missing.json"], "@missing.json: no such file"
    ),
    "config-json-syntax": (["check", "toylms", "--config-json", "{bad"], "--config-json is not valid JSON"),
    "config-json-not-object": (["check", "toylms", "--config-json", "[1]"], "must be a JSON object"),
    "config-env-unset": (["check", "toylms", "--config-env", "LMSCONNECT_TEST_UNSET"], "is not set"),
    "config-unknown-field": (
        ["check", "toylms", "--config-json", '{"base_url": "http://127.0.0.1:9", "tokn": "x"}'],
        "--config-json or --config-env",
    ),
    "passthrough-params-syntax": (
        ["passthrough", "toylms", "GET", "/api/users", "--config-json", '{"base_url": "http://127.0.0.1:9", '
         '"token": "x"}', "--params", "{x"],
        "--params is not valid JSON",
    ),
    "misspelt-slug": (["capabilities", "toylm"], "Did you mean 'toylms'?"),
    "misspelt-slug-check": (["check", "toylm", "--config-json", "{}"], "Did you mean 'toylms'?"),
    "misspelt-option": (["simulate", "toylms", "--option", "sead=3"], "did you mean 'seed'?"),
    "option-without-value": (["simulate", "toylms", "--option", "seed"], "--option takes NAME=VALUE"),
    "negative-users": (["simulate", "toylms", "--users", "-3"], "--users must be a number >= 0"),
    "non-numeric-latency": (["simulate", "toylms", "--latency", "fast"], "--latency takes a number"),
    "missing-required-option": (["sync", "toylms", "--config-json", "{}"], "see `lmsconnect sync --help`"),
    "unknown-command": (["synk"], "invalid choice: 'synk'"),
    "unknown-model": (
        ["sync", "toylms", "--config-json", "{}", "--db", "x.sqlite", "--models", "user"],
        "did you mean 'users'?",
    ),
    "bad-log-level": (["--log-level", "loud", "plugins"], "argument --log-level"),
    "port-out-of-range": (["simulate", "toylms", "--port", "99999"], "a port is a number from 0 to 65535"),
    "sync-config-missing-field": (
        ["sync", "toylms", "--config-json", '{"token": "x"}', "--db", "s.sqlite"],
        "missing required config field(s) for 'toylms'",
    ),
    "sync-unknown-confirm-model": (
        ["sync", "toylms", "--config-json", '{"base_url": "http://127.0.0.1:9", "token": "x"}', "--db",
         "s.sqlite", "--confirm-deletions", "skills"],
        "skills",
    ),
    "changes-no-store": (
        ["changes", "--db", "missing.sqlite"], "no store at 'missing.sqlite'. Run `lmsconnect sync"
    ),
    "bad-progress-every": (
        ["sync", "toylms", "--config-json", "{}", "--db", "s.sqlite", "--progress-every", "0"],
        "a number of seconds > 0",
    ),
    "unwritable-docs-folder": (["docs", "toylms", "--out", "/proc/lmsconnect-docs"], "cannot use /proc"),
}


class TestMistakes:
    @pytest.mark.parametrize("argv, expected", list(MISTAKES.values()), ids=list(MISTAKES))
    def test_one_line_and_exit_2(
        self, argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Each ordinary mistake is one `error:` line saying what to do, exit 2, no traceback."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("LMSCONNECT_TEST_UNSET", raising=False)
        assert_one_line_error(*main_in_process(argv, capsys), expected)

    def test_json_syntax_error_does_not_blame_connect(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A JSON syntax error names the option and the position, not 'the arguments of connect()'."""
        _, _, err = main_in_process(["check", "toylms", "--config-json", '{"a": 1,}'], capsys)
        assert "line 1 column 9" in err and "connect()" not in err

    def test_busy_port(self, busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
        """`simulate --port` on a port in use says so and how to pick another."""
        result = main_in_process(["simulate", "toylms", "--port", str(busy_port)], capsys)
        assert_one_line_error(*result, "choose another --port")

    @requires["moodle"]
    def test_moodle_negative_users(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`simulate moodle --users -3` is refused instead of starting an empty site."""
        assert_one_line_error(*main_in_process(["simulate", "moodle", "--users", "-3"], capsys), "-3")

    @requires["talentlms"]
    def test_non_numeric_fault_rate(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A non-numeric `--option fault_rate` is refused naming the option and the type it takes."""
        result = main_in_process(["simulate", "talentlms", "--option", "fault_rate=lots"], capsys)
        assert_one_line_error(*result, "--option fault_rate takes a number, got 'lots'")

    @requires["talentlms"]
    def test_unresolvable_domain_fails_fast(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A domain that does not resolve is one configuration line within seconds, not a vendor outage."""
        if not resolver_says_no_such_name():
            pytest.skip("this machine's resolver cannot answer 'no such name'")
        started = time.monotonic()
        config = json.dumps({"domain": UNRESOLVABLE, "api_key": "k" * 30})
        result = main_in_process(["check", "talentlms", "--config-json", config], capsys)
        assert_one_line_error(*result, "does not resolve")
        assert time.monotonic() - started < 5

    @requires["talentlms"]
    def test_unresolvable_domain_sync_says_it_once(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`sync` against a domain that does not resolve is one configuration line, not one per model."""
        if not resolver_says_no_such_name():
            pytest.skip("this machine's resolver cannot answer 'no such name'")
        config = json.dumps({"domain": UNRESOLVABLE, "api_key": "k" * 30})
        argv = ["sync", "talentlms", "--config-json", config, "--db", str(tmp_path / "s.sqlite")]
        assert_one_line_error(*main_in_process(argv, capsys), "does not resolve")

    async def test_wrong_key_sync_says_it_once(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`sync` with a wrong token exits 2 with the authentication error once, no per-model failures."""
        from lmsconnect_toylms.testing import ToySimulator

        async with ToySimulator() as sim:
            config = json.dumps({**sim.connect_config, "token": "wrong-token-wrong-token"})
            argv = ["sync", "toylms", "--config-json", config, "--db", str(tmp_path / "s.sqlite")]
            code = await asyncio.to_thread(main, argv)
        captured = capsys.readouterr()
        assert_one_line_error(code, captured.out, captured.err, "[toylms]")
        assert "wrong-token" not in captured.err
        assert sim.calls == 1  # the sync's first read, and no other model tried

    def test_debug_shows_the_traceback(self) -> None:
        """With --debug the same mistake also prints the traceback (a subprocess, as a user runs it)."""
        plain = run("check", "toylms", "--config-json", "@missing.json")
        debug = run("--debug", "check", "toylms", "--config-json", "@missing.json")
        assert plain.returncode == debug.returncode == 2
        assert "Traceback" not in plain.stderr and plain.stderr.count("\n") == 1
        assert "Traceback" in debug.stderr and "no such file" in debug.stderr


class TestHelp:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`--version` prints the installed version."""
        code, out, _ = main_in_process(["--version"], capsys)
        assert code == 0 and out.strip() == f"lmsconnect {lmsconnect.__version__}"

    def test_every_subcommand_and_option_has_help(self) -> None:
        """Every subcommand has a description and every option a help text."""
        parser = _parser()
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert {c.dest for c in subparsers._choices_actions} == set(subparsers.choices)
        assert all(c.help for c in subparsers._choices_actions)
        for name, sub in [("lmsconnect", parser), *subparsers.choices.items()]:
            assert sub.description, name
            for action in sub._actions:
                if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                    continue
                assert action.help, f"{name} {action.option_strings or action.dest}"

    def test_slugs_are_listed_and_exit_codes_documented(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The help of a command taking a slug lists the installed ones, and says what exit codes mean."""
        code, out, _ = main_in_process(["sync", "--help"], capsys)
        assert code == 0
        assert "toylms" in out and "exit codes" in out and "--config-env" in out

    def test_help_options_lists_every_simulator_option_with_its_meaning(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`simulate SLUG --help-options` describes every option of every installed simulator."""
        from lmsconnect.testing import load_simulator

        slugs = [s for s in lmsconnect._registry.registry.slugs()
                 if lmsconnect._registry.registry.get(s).spec.simulator]
        assert "toylms" in slugs
        for slug in slugs:
            code, out, _ = main_in_process(["simulate", slug, "--help-options"], capsys)
            assert code == 0
            params = [p for p in inspect.signature(load_simulator(slug).__init__).parameters if p != "self"]
            listed = [line.split()[0] for line in out.splitlines()[4:] if line and not line.startswith(" ")]
            assert listed == params, slug
            assert "(not described by the simulator)" not in out, slug


class TestConfigSources:
    async def test_simulate_output_file_is_accepted_by_sync(self, tmp_path: Path) -> None:
        """`simulate > creds.json` then `sync --config-json @creds.json --json --models --connection` runs."""
        from lmsconnect_toylms.testing import ToySimulator

        async with ToySimulator(users=4) as sim:
            creds = tmp_path / "creds.json"
            creds.write_text(json.dumps({"config": sim.connect_config}) + "\n")
            out = io.StringIO()
            code = await asyncio.to_thread(
                main, ["sync", "toylms", "--config-json", f"@{creds}", "--db", str(tmp_path / "s.sqlite"),
                       "--json", "--models", "users", "--connection", "acme"], out,
            )
        assert code == 0
        report = json.loads(out.getvalue())
        assert report["connection"] == "acme"
        assert list(report["models"]) == ["users"] and report["models"]["users"]["read"] == 4

    async def test_config_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """`--config-env VAR` reads the connection from the environment, keeping it out of argv."""
        from lmsconnect_toylms.testing import ToySimulator

        async with ToySimulator() as sim:
            monkeypatch.setenv("TOY_CREDS", json.dumps(sim.connect_config))
            out = io.StringIO()
            argv = ["check", "toylms", "--config-env", "TOY_CREDS", "--json"]
            code = await asyncio.to_thread(main, argv, out)
        assert code == 0 and json.loads(out.getvalue())["ok"] is True
