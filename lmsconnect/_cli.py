"""The ``lmsconnect`` command line. Human output is plain tables; ``--json`` output is machine-readable."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._capabilities import matrix_markdown, matrix_rows
from ._errors import ConfigurationError, LMSConnectError
from ._models import BASE_FIELDS
from ._registry import registry

__all__ = ["main", "table"]


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """A plain-text table with aligned columns."""
    cells = [[str(c) for c in row] for row in ([header] if header else []) + list(rows)]
    if not cells:
        return ""
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in cells]
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _config(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--config-json is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ConfigurationError("--config-json must be a JSON object of connect() arguments")
    return value


def _cmd_plugins(args: argparse.Namespace, out: TextIO) -> int:
    infos = registry.infos()
    if args.json:
        out.write(json.dumps([
            {"slug": i.slug, "name": i.name, "distribution": i.distribution, "version": i.version,
             "entry_point": i.entry_point, "ok": i.ok, "error": i.error, "shadowed": list(i.shadowed)}
            for i in infos
        ], indent=2) + "\n")
    else:
        rows = [[i.slug, i.name or "-", i.distribution or "(in code)", i.version or "-",
                 "ok" if i.ok else "BROKEN"] for i in infos]
        out.write(table(rows, ["slug", "name", "distribution", "version", "status"]) + "\n")
        for info in infos:
            if info.error:
                out.write(f"\n{info.slug}: {info.error}\n")
            for other in info.shadowed:
                out.write(f"\n{info.slug}: also offered by {other}, ignored (first distribution wins)\n")
    return 0 if all(i.ok for i in infos) else 1


def _cmd_capabilities(args: argparse.Namespace, out: TextIO) -> int:
    if args.slug:
        caps = registry.get(args.slug).capabilities
        if args.json:
            out.write(caps.to_json())
        elif args.markdown:
            out.write(caps.to_markdown())
        else:
            out.write(_capabilities_text(caps))
        return 0
    tables = [cls.capabilities for cls in registry.loaded()]
    if args.json:
        out.write(json.dumps({t.slug: t.to_dict() for t in tables}, indent=2) + "\n")
    elif args.markdown:
        out.write(matrix_markdown(tables))
    else:
        header, rows = matrix_rows(tables)
        out.write(table(rows, header) + "\n")
    return 0


def _wrapped(rows: list[list[str]], width: int = 72) -> list[list[str]]:
    """Rows whose last cell is wrapped onto continuation rows, so tables stay readable in a terminal."""
    out = []
    for row in rows:
        lines = textwrap.wrap(row[-1], width) or [""]
        out.append([*row[:-1], lines[0]])
        out.extend([*([""] * (len(row) - 1)), line] for line in lines[1:])
    return out


def _capabilities_text(caps: Any) -> str:
    lines = [f"{caps.name} ({caps.slug})", ""]
    rows = []
    for key, model in caps.models.items():
        fields = [f for f, c in model.fields.items()
                  if c.support.value != "unsupported" and f not in BASE_FIELDS]
        rows.append(["model", key, "yes" if model.supported else "no",
                     ", ".join(fields) if model.supported else model.note])
    for key, action in caps.actions.items():
        flags = ",".join(sorted(f.value for f in action.flags))
        rows.append(["action", key, ("yes" + (f" ({flags})" if flags else "")) if action.supported else "no",
                     action.note])
    for key, feature in caps.features.items():
        rows.append(["feature", key, "yes" if feature.supported else "no", feature.note])
    lines.append(table(_wrapped(rows), ["kind", "name", "supported", "fields / note"]))
    return "\n".join(lines) + "\n"


async def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from ._api import connect

    async with connect(args.slug, **_config(args.config_json)) as lms:
        report = await lms.check()
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        rows = [[i.kind, i.name, i.status.value, ", ".join(i.permissions), i.detail]
                for i in report.items]
        out.write(table(_wrapped(rows, 60), ["kind", "name", "status", "missing", "detail"]) + "\n")
        out.write(f"\n{'OK' if report.ok else 'PROBLEMS FOUND'}\n")
    return 0 if report.ok else 1


async def _cmd_passthrough(args: argparse.Namespace, out: TextIO) -> int:
    from ._api import connect

    kwargs: dict[str, Any] = {"raise_for_status": False}
    if args.params:
        kwargs["params"] = json.loads(args.params)
    if args.data:
        kwargs["data"] = json.loads(args.data)
    if args.json_body:
        kwargs["json_body"] = json.loads(args.json_body)
    async with connect(args.slug, **_config(args.config_json)) as lms:
        response = await lms.passthrough(args.method, args.path, **kwargs)
    try:
        body: Any = response.json()
    except LMSConnectError:
        body = response.text
    out.write(json.dumps({"status": response.status, "url": response.url, "body": body}, indent=2) + "\n")
    return 0 if response.status < 400 else 1


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


async def _cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import load_simulator

    options: dict[str, Any] = {}
    for name in ("users", "courses", "enrollments", "seed", "latency"):
        value = getattr(args, name)
        if value is not None:
            options[name] = value
    for item in args.option or ():
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigurationError(f"--option takes KEY=VALUE, got {item!r}")
        options[key.replace("-", "_")] = _option_value(value)
    sim = load_simulator(args.slug)(**options)
    await sim.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    out.write(json.dumps({"config": sim.connect_config}) + "\n")
    out.flush()
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def _cmd_docs(args: argparse.Namespace, out: TextIO) -> int:
    """Write (or with --check, verify) docs/capabilities from the installed capability tables."""
    target = Path(args.out)
    # Sorted, so the matrix's columns do not depend on the order the slugs were named in.
    slugs = sorted(args.slugs or [i.slug for i in registry.infos() if i.ok])
    pages = {f"{s}.md": registry.get(s).capabilities.to_markdown() for s in slugs}
    pages["README.md"] = matrix_markdown([registry.get(s).capabilities for s in slugs])
    stale = [name for name, text in pages.items()
             if not (target / name).exists() or (target / name).read_text() != text]
    if args.check:
        for name in stale:
            out.write(f"stale: {target / name} (run `lmsconnect docs --out {target} {' '.join(slugs)}`)\n")
        return 1 if stale else 0
    target.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (target / name).write_text(pages[name])
        out.write(f"wrote {target / name}\n")
    return 0


async def _cmd_sync(args: argparse.Namespace, out: TextIO) -> int:
    from ._sync import cli_sync

    confirm: bool | list[str] = False
    if args.confirm_deletions == "all":
        confirm = True
    elif args.confirm_deletions:
        confirm = [m.strip() for m in args.confirm_deletions.split(",") if m.strip()]
    return await cli_sync(
        args.slug,
        _config(args.config_json),
        args.db,
        out=out,
        progress=not args.quiet,
        confirm_deletions=confirm,
    )


async def _cmd_changes(args: argparse.Namespace, out: TextIO) -> int:
    from ._sync import cli_changes

    return await cli_changes(args.db, args.since, args.json, out)


async def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo

    return await run_demo(db=args.db, out=out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lmsconnect", description="One unified view of learning-management systems."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list installed connectors (and broken plugins)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("capabilities", help="a connector's capability table, or the matrix of all")
    p.add_argument("slug", nargs="?")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true")

    p = sub.add_parser("check", help="scope testing and per-model tests for credentials")
    p.add_argument("slug")
    p.add_argument("--config-json", required=True, help="connect() arguments as JSON (or @file)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("passthrough", help="a raw vendor call with the connector's auth")
    p.add_argument("slug")
    p.add_argument("method")
    p.add_argument("path")
    p.add_argument("--config-json", required=True)
    p.add_argument("--params", help="query parameters as JSON")
    p.add_argument("--data", help="form fields as JSON")
    p.add_argument("--json-body", help="a JSON body")

    p = sub.add_parser("simulate", help="run a connector's simulator on 127.0.0.1 until terminated")
    p.add_argument("slug")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--users", type=int)
    p.add_argument("--courses", type=int)
    p.add_argument("--enrollments", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--latency", type=float, help="seconds added to every response")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a simulator-specific option (repeatable), e.g. --option fault_rate=0.1")

    p = sub.add_parser("sync", help="sync a connection into a state store (SQLite file or PostgreSQL URL)")
    p.add_argument("slug")
    p.add_argument("--config-json", required=True)
    p.add_argument("--db", required=True, help="a SQLite file path, or postgresql://user@host/db")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    p.add_argument(
        "--confirm-deletions", nargs="?", const="all", metavar="MODELS",
        help="accept deletions the mass-deletion guard held (SYNC.DELETIONS_HELD): for the models "
        "given (comma-separated, e.g. users,courses) or, without a value, for every model",
    )

    p = sub.add_parser("changes", help="print the change feed of a store")
    p.add_argument("--db", required=True, help="a SQLite file path, or postgresql://user@host/db")
    p.add_argument("--since", type=int, default=0)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("docs", help="generate docs/capabilities from the capability tables")
    p.add_argument("slugs", nargs="*")
    p.add_argument("--out", default="docs/capabilities")
    p.add_argument("--check", action="store_true", help="exit 1 if the pages are stale")

    p = sub.add_parser("demo", help="the main job: simulators, sync, actions, quirks, change feed")
    p.add_argument("--db", default="lmsconnect-demo/demo.sqlite")
    return parser


_SYNC_COMMANDS = {"plugins": _cmd_plugins, "capabilities": _cmd_capabilities, "docs": _cmd_docs}
_ASYNC_COMMANDS = {
    "check": _cmd_check, "passthrough": _cmd_passthrough, "simulate": _cmd_simulate,
    "sync": _cmd_sync, "changes": _cmd_changes, "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stream = out or sys.stdout
    try:
        if args.command in _SYNC_COMMANDS:
            return _SYNC_COMMANDS[args.command](args, stream)
        return asyncio.run(_ASYNC_COMMANDS[args.command](args, stream))
    except LMSConnectError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
