"""The four distributions as a user gets them: built wheels and sdists, installed into a clean venv.

Built with ``python -m build`` (isolated, as an index build is), checked with ``twine check``, installed
with pip into a fresh virtual environment that has nothing of this checkout on its path; then, from
there: the console script, the conformance kit against each bundled plugin, one sync, and a plain
third-party plugin project that runs the plugin guide's conformance block with ``pytest`` and no pytest
configuration. This catches missing package data, undeclared dependencies and a kit that silently
needed this repository's pytest settings. pip's cache is reused, so after the first run it takes about a
minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging  # `pytest -m "not packaging"` skips this module while iterating

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT, *sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())]


def sh(*cmd: str | Path, cwd: Path | None = None, timeout: float = 600, stderr: bool = False) -> str:
    """Run a command; on failure, fail the test with its output. Its stdout (and stderr after it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode:
        shown = " ".join(map(str, cmd))
        pytest.fail(f"{shown} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr if stderr else result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels and sdists of the core and every plugin in this checkout."""
    out = tmp_path_factory.mktemp("dist")
    for source in SOURCES:
        sh(sys.executable, "-m", "build", "--outdir", out, source)
    return out


@pytest.fixture(scope="module")
def clean_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new virtual environment with the built wheels (core with its `testing` extra) and nothing else."""
    root = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / ("Scripts" if os.name == "nt" else "bin") / "python"
    core = next(dist.glob("lmsconnect-*.whl"))
    plugins = list(dist.glob("lmsconnect_*.whl"))
    sh(python, "-m", "pip", "install", "--quiet", f"{core}[testing]", *plugins)
    yield python.parent


def test_every_distribution_builds_and_passes_twine_check(dist: Path) -> None:
    """Each of the four distributions has a wheel and an sdist whose metadata twine accepts."""
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == len(sdists) == len(SOURCES)
    sh(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists)


def test_wheels_carry_their_typing_marker_and_no_tests(dist: Path) -> None:
    """Every package ships py.typed (mypy sees its types) and no wheel carries tests or egg-info."""
    for wheel in dist.glob("*.whl"):
        names = zipfile.ZipFile(wheel).namelist()
        top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert top and all(t.startswith("lmsconnect") for t in top), (wheel.name, top)
        for package in top:
            assert f"{package}/py.typed" in names, wheel.name
        assert not [n for n in names if "/tests/" in n or ".egg-info" in n], wheel.name


def test_core_wheel_declares_the_otel_extra_with_the_api_only(dist: Path) -> None:
    """``lmsconnect[otel]`` brings opentelemetry-api and nothing else: the SDK is the service's choice."""
    core = next(dist.glob("lmsconnect-*.whl"))
    with zipfile.ZipFile(core) as wheel:
        metadata = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    assert "Provides-Extra: otel" in metadata
    otel = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "otel" in line]
    assert [line.split()[1].split(">")[0] for line in otel] == ["opentelemetry-api"]


def test_installed_wheels_list_every_connector(clean_venv: Path) -> None:
    """The console script from the wheels finds every plugin through its entry point."""
    rows = json.loads(sh(clean_venv / "lmsconnect", "plugins", "--json"))
    assert {r["slug"] for r in rows if r["ok"]} >= {"talentlms", "moodle", "360learning"}


def test_conformance_kit_runs_from_the_wheels(clean_venv: Path, tmp_path: Path) -> None:
    """The plugins' conformance files pass against the installed wheels, with no pytest configuration."""
    for source in (ROOT / "plugins").glob("*/tests/test_*_conformance.py"):
        shutil.copy(source, tmp_path / source.name)
    output = sh(clean_venv / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    assert " passed" in output and "failed" not in output


def test_one_sync_from_the_wheels(clean_venv: Path, tmp_path: Path) -> None:
    """`simulate > creds.json`, then `sync --config-json @creds.json --json`, from the installed script."""
    cli = clean_venv / "lmsconnect"
    simulate = [cli, "simulate", "talentlms", "--users", "25"]
    with subprocess.Popen(simulate, stdout=subprocess.PIPE, text=True) as sim:
        try:
            assert sim.stdout is not None
            (tmp_path / "creds.json").write_text(sim.stdout.readline())
            report = json.loads(sh(cli, "sync", "talentlms", "--config-json", "@creds.json",
                                   "--db", "state.sqlite", "--json", cwd=tmp_path))
        finally:
            sim.terminate()
    assert report["ok"] is True
    assert report["models"]["users"]["read"] == 25


def guide_conformance_block() -> str:
    """The plugin guide's conformance block, as Sybil (which runs the docs) reads it."""
    from sybil import Document
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

    guide = ROOT / "docs" / "plugin-guide.md"
    lexer = FencedCodeBlockLexer(language="python", mapping={"source": "source"})
    blocks = [str(r.lexemes["source"]) for r in lexer(Document(guide.read_text(), str(guide)))]
    return next(b for b in blocks if "ConformanceSuite)" in b)


def test_third_party_plugin_project_passes_the_kit(clean_venv: Path, tmp_path: Path) -> None:
    """A plain plugin project: its package, the guide's lines as a test file, `pytest` — green, and
    without a warning."""
    project = tmp_path / "toylms-project"
    shutil.copytree(ROOT / "docs" / "examples" / "toylms", project,
                    ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"))
    assert not (project / "pytest.ini").exists()
    assert "[tool.pytest" not in (project / "pyproject.toml").read_text()
    (project / "tests").mkdir()
    (project / "tests" / "test_toylms_conformance.py").write_text(guide_conformance_block())
    sh(clean_venv / "python", "-m", "pip", "install", "--quiet", project)
    output = sh(clean_venv / "pytest", "-q", cwd=project, stderr=True)
    assert " passed" in output and "failed" not in output and "error" not in output.lower()
    assert "warning" not in output.lower(), output  # e.g. pytest-asyncio's unset loop scope
