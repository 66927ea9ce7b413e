"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` in a temporary directory,
listening on a free port of 127.0.0.1 only, removed again on `stop`.

>>> with TemporaryPostgres() as url:
...     async with lmsconnect.open_store(url) as store: ...

``initdb`` refuses to run as root; as root the server's files belong to the ``postgres`` user and its
commands run as that user (``runuser``, else ``su``). The binaries are looked up in
``$LMSCONNECT_PG_BIN`` when it is set (only there), else ``/usr/lib/postgresql/<newest>/bin`` (Debian,
Ubuntu), then ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Final

__all__ = ["HOW_TO_GET_ONE", "TemporaryPostgres", "find_bindir"]

HOW_TO_GET_ONE: Final = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found: install them "
    "(apt-get install postgresql, dnf install postgresql-server, brew install postgresql@15) or point "
    "LMSCONNECT_PG_BIN at their directory; or set LMSCONNECT_TEST_PG_URL=postgresql://... to use a running "
    "server (the tests create and use their own schemas in it)"
)


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    candidates: list[Path] = []
    if os.environ.get("LMSCONNECT_PG_BIN"):
        candidates = [Path(os.environ["LMSCONNECT_PG_BIN"])]  # set: the only place to look
    else:
        candidates = _default_places()
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            return bindir
    return None


def _default_places() -> list[Path]:
    candidates: list[Path] = []
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.split(".")[0].isdigit()]
        versions.sort(key=lambda p: [int(x) for x in p.name.split(".") if x.isdigit()], reverse=True)
        candidates += [p / "bin" for p in versions]
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    return candidates


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryPostgres:
    """Start with `start` (returns the URL, user ``postgres``, trust auth on 127.0.0.1), end with `stop`.

    ``fsync=False`` (the default) makes commits cheap for tests; a benchmark passes ``fsync=True`` to
    measure what a real server does.
    """

    def __init__(
        self, bindir: Path | None = None, *, fsync: bool = False, max_connections: int = 300
    ) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise FileNotFoundError(HOW_TO_GET_ONE)
        self.bindir = found
        self.fsync = fsync
        self.max_connections = max_connections
        self.url = ""
        self._dir: Path | None = None
        self._as: list[str] = []

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as, *command], capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")

    def start(self) -> str:
        self._dir = Path(tempfile.mkdtemp(prefix="lmsconnect-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "initdb refuses to run as root and there is no 'postgres' user to run it as"
                ) from None
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser")
            su = ["su", "postgres", "-s", "/bin/sh", "-c"]
            self._as = [runuser, "-u", "postgres", "--"] if runuser else su
        data = self._dir / "data"
        self._exec(
            str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        for _ in range(5):
            port = _free_port()
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self._dir} "
                f"-c max_connections={self.max_connections} -c fsync={'on' if self.fsync else 'off'}"
            )
            try:
                self._exec(
                    str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self._dir / "server.log"),
                    "-w", "-t", "60", "-o", options, "start",
                )  # fmt: skip
            except RuntimeError:
                continue  # the port was taken between our probe and the server's bind: another one
            self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            return self.url
        log = (self._dir / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the temporary PostgreSQL server did not start: {log}")

    def _exec(self, *command: str) -> None:
        if self._as and self._as[0] == "su":
            import shlex

            self._run(" ".join(shlex.quote(c) for c in command))
        else:
            self._run(*command)

    def stop(self) -> None:
        if self._dir is None:
            return
        data = self._dir / "data"
        if self.url:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._exec(str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
        self.url = ""

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
