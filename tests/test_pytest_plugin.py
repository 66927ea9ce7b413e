"""The conformance kit's pytest plugin in a project that has no pytest configuration of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .test_packaging import guide_conformance_block


def run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONWARNINGS"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )


def test_guide_block_runs_green_and_warning_free_without_configuration(tmp_path: Path) -> None:
    """The plugin guide's lines in a bare project pass, with no pytest-asyncio loop-scope warning."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_toylms_conformance.py").write_text(guide_conformance_block())
    result = run_pytest(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in result.stdout and "warning" not in output.lower(), output


def test_the_projects_own_loop_scope_setting_wins(tmp_path: Path) -> None:
    """The kit only supplies a default: a project's asyncio_default_fixture_loop_scope is kept."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = class\n")
    (tmp_path / "test_scope.py").write_text(
        "def test_scope(pytestconfig):\n"
        "    assert pytestconfig.getini('asyncio_default_fixture_loop_scope') == 'class'\n"
    )
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_project_with_a_wider_loop_scope_runs_the_kit(tmp_path: Path) -> None:
    """A project whose fixtures default to a module-wide loop still runs the kit green (each kit test
    and its simulator share one loop)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    (tmp_path / "test_toylms_conformance.py").write_text(guide_conformance_block())
    result = run_pytest(tmp_path)
    assert result.returncode == 0 and " passed" in result.stdout, result.stdout + result.stderr
