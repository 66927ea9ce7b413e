"""Every code block in README.md and docs/ runs as a test, with Sybil, against the bundled simulators.

Sybil (rather than a hand-written extractor or pytest-examples): it parses Markdown fenced blocks and
HTML-comment directives, runs each document's blocks in order in one namespace with a per-document
setup and teardown, and understands ``<!-- skip: next "reason" -->`` — the one way a block is marked
not-run, with its reason shown by ``pytest -rs``. pytest-examples checks Python blocks only (no shell)
and has no per-document setup.

Each document gets, from `setup`: its own event loop; running simulators of the installed connectors;
the names its Python blocks use for credentials (``base_url``/``token`` of a Moodle site,
``talentlms_config``, ``moodle_config``, ``learning360_config``, 360Learning's ``admin_user_id``: a
reader's own values from their secret store); and a scratch directory where shell blocks run,
holding ``creds.json`` (what ``lmsconnect simulate talentlms`` prints), ``talentlms.json`` and
``moodle.json``, with the environment variables ``TALENTLMS_CONFIG`` and ``MOODLE_CONFIG`` — so the
``@file`` and ``--config-env`` examples run as written.

Python blocks may use top-level ``await``/``async with``/``async for``, as in ``python -m asyncio``. Shell
blocks (``sh``) run as one bash script with ``set -eu``; ``console`` blocks run their ``$`` lines. Output
is not compared: a block passes when it runs without an error (exit status 0).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sybil import Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import CodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parent
SHELL_TIMEOUT_S = 120.0
SIM_SIZE = {"users": 20, "courses": 5, "enrollments": 40}


def run_python(example: Example) -> None:
    """Exec the block; a block with top-level await becomes a coroutine, run on the document's loop."""
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    before = Path.cwd()
    os.chdir(example.namespace["_cwd"])  # files a block writes (lms.sqlite) land in the scratch directory
    try:
        result = eval(code, example.namespace)  # the code is our own documentation
        if inspect.iscoroutine(result):
            example.namespace["_loop"].run_until_complete(result)
    finally:
        os.chdir(before)
        example.namespace.pop("__builtins__", None)


def _shell(example: Example, script: str) -> None:
    async def run() -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", "set -eu\n" + script, cwd=example.namespace["_cwd"], env=example.namespace["_env"],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), SHELL_TIMEOUT_S)
        except asyncio.TimeoutError:
            # A block that never ends (a server): stop it and whatever it started, then fail.
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            return -1, f"(still running after {SHELL_TIMEOUT_S} s: a block serving until stopped needs skip)"
        return proc.returncode or 0, out.decode(errors="replace")

    # On the document's loop, so the simulators it serves answer while the commands run.
    code, output = example.namespace["_loop"].run_until_complete(run())
    if code:
        raise AssertionError(f"shell block exited {code}:\n{script}\n--- output ---\n{output}")


def run_sh(example: Example) -> None:
    _shell(example, str(example.parsed))


def run_console(example: Example) -> None:
    commands = [line[2:] for line in str(example.parsed).splitlines() if line.startswith("$ ")]
    _shell(example, "\n".join(commands))


def setup(namespace: dict[str, Any]) -> None:
    from lmsconnect._registry import registry
    from lmsconnect.testing import load_simulator

    loop = asyncio.new_event_loop()
    cwd = Path(tempfile.mkdtemp(prefix="lmsconnect-docs-"))
    (cwd / ".venv").symlink_to(sys.prefix)  # so `.venv/bin/lmsconnect` works as in a checkout
    sims: dict[str, Any] = {}
    for slug in ("talentlms", "moodle", "360learning"):
        if slug in registry.slugs():
            sim = load_simulator(slug)(**SIM_SIZE)
            loop.run_until_complete(sim.start("127.0.0.1", 0))
            sims[slug] = sim
    configs = {slug: dict(sim.connect_config) for slug, sim in sims.items()}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if "talentlms" in configs:
        (cwd / "creds.json").write_text(json.dumps({"config": configs["talentlms"]}) + "\n")
        (cwd / "talentlms.json").write_text(json.dumps(configs["talentlms"]) + "\n")
        env["TALENTLMS_CONFIG"] = json.dumps(configs["talentlms"])
    if "moodle" in configs:
        (cwd / "moodle.json").write_text(json.dumps(configs["moodle"]) + "\n")
        env["MOODLE_CONFIG"] = json.dumps(configs["moodle"])
        namespace.update(base_url=configs["moodle"]["base_url"], token=configs["moodle"]["token"])
    namespace.update(
        _loop=loop, _sims=sims, _cwd=cwd, _env=env,
        talentlms_config=configs.get("talentlms"), moodle_config=configs.get("moodle"),
        learning360_config=configs.get("360learning"),
        admin_user_id=sims["360learning"].company.admin_id if "360learning" in sims else None,
    )


def reset_otel_globals() -> None:
    """Forget the global OpenTelemetry providers a test or a docs page installed (OpenTelemetry lets a
    process set them once; its own test utilities reset them the same way)."""
    try:
        from opentelemetry import trace
        from opentelemetry.metrics import _internal as metrics
        from opentelemetry.util._once import Once
    except ImportError:
        return
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics._METER_PROVIDER_SET_ONCE = Once()
    metrics._METER_PROVIDER = None


@pytest.fixture
def otel() -> Iterator[tuple[Any, Any]]:
    """OpenTelemetry's SDK installed as the global providers, as a service does: ``(span exporter,
    metric reader)``, both in memory; the globals are reset afterwards."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    reset_otel_globals()
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    try:
        yield exporter, reader
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()
        reset_otel_globals()


def teardown(namespace: dict[str, Any]) -> None:
    reset_otel_globals()  # docs/observability.md installs the SDK's providers
    loop: asyncio.AbstractEventLoop = namespace["_loop"]
    for sim in namespace["_sims"].values():
        loop.run_until_complete(sim.stop())
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    shutil.rmtree(namespace["_cwd"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[
        CodeBlockParser("python", run_python),
        CodeBlockParser("sh", run_sh),
        CodeBlockParser("console", run_console),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    excludes=["docs/capabilities/*.md"],
    setup=setup,
    teardown=teardown,
).pytest()
