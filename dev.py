#!/usr/bin/env python3
"""The two commands of the quick start, on a fresh machine with only Python 3 and pip.

    python3 dev.py demo    the main job: bundled simulators -> sync into SQLite -> actions and quirks
    python3 dev.py test    every test (core + plugins), ruff, mypy --strict, and docs freshness; the
                           PostgreSQL store tests start their own server when its binaries are
                           installed (else they skip, saying how to get them)

Both create ./.venv on first use and install the core, every plugin in plugins/ and (for tests) the dev
tools into it; later runs reuse it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PLUGINS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
EXAMPLE = ROOT / "docs" / "examples" / "toylms"


def run(*cmd: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=ROOT)
    if check and code:
        sys.exit(code)
    return code


def ensure_env(*, dev: bool) -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    marker = VENV / (".installed-dev" if dev else ".installed")
    sources = [ROOT / "pyproject.toml", *(p / "pyproject.toml" for p in PLUGINS)]
    if marker.exists() and all(s.stat().st_mtime <= marker.stat().st_mtime for s in sources):
        return
    # compat editable installs put the source folders on sys.path (a .pth), which mypy can follow;
    # setuptools' default import-hook finders are invisible to it.
    pip = [BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--config-settings", "editable_mode=compat"]
    editable: list[str | Path] = ["-e", ROOT]
    for plugin in PLUGINS:
        editable += ["-e", plugin]
    if dev:
        editable = ["-e", f"{ROOT}[dev]", *editable[2:], "-e", EXAMPLE]
    run(*pip, *editable)
    marker.write_text("ok\n")


def plugin_packages() -> list[str]:
    return sorted(
        p.name
        for plugin in PLUGINS
        for p in plugin.glob("lmsconnect_*")
        if p.is_dir() and p.name.isidentifier()
    )


def plugin_slugs() -> list[str]:
    # Read by hand rather than with tomllib, which Python 3.10 lacks.
    slugs = []
    for plugin in PLUGINS:
        inside = False
        for line in (plugin / "pyproject.toml").read_text().splitlines():
            if line.startswith("["):
                inside = line.strip() == '[project.entry-points."lmsconnect.connectors"]'
            elif inside and "=" in line:
                slugs.append(line.split("=", 1)[0].strip().strip('"'))
    return sorted(slugs)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "demo":
        ensure_env(dev=False)
        return run(BIN / "lmsconnect", "demo", *argv[2:], check=False)
    if command == "test":
        ensure_env(dev=True)
        failures = []
        # -rs: say why a test was skipped (the PostgreSQL store tests skip, saying how to get a server,
        # when no PostgreSQL server binary is installed; .ci/run installs one).
        if run(BIN / "python", "-m", "pytest", "-rs", *argv[2:], check=False):
            failures.append("pytest")
        if run(BIN / "ruff", "check", ".", check=False):
            failures.append("ruff")
        packages = [
            arg for pkg in ["lmsconnect", *plugin_packages(), "lmsconnect_toylms"] for arg in ("-p", pkg)
        ]
        if run(BIN / "mypy", "--strict", *packages, check=False):
            failures.append("mypy")
        if run(BIN / "lmsconnect", "docs", "--check", *plugin_slugs(), check=False):
            failures.append("docs freshness (run: python3 dev.py docs)")
        print("\nFAILED: " + ", ".join(failures) if failures else "\nall checks passed", flush=True)
        return 1 if failures else 0
    if command == "docs":
        ensure_env(dev=True)
        return run(BIN / "lmsconnect", "docs", *plugin_slugs(), check=False)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
