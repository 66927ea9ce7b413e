"""The ``lmsconnect`` command line. Human output is plain tables; ``--json`` output is machine-readable.

A mistake (a usage error, a bad configuration, wrong credentials, an unreachable host) is one line on
stderr saying what was wrong and what to do, with exit code 2; ``--debug`` adds the traceback. The exit
codes are listed in ``EXIT_CODES`` (and in every ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections.abc
import difflib
import inspect
import json
import logging
import math
import os
import signal
import sys
import textwrap
import traceback
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._capabilities import matrix_markdown, matrix_rows
from ._comparison import comparison_markdown
from ._connector import Connector
from ._errors import AuthenticationError, ConfigurationError, LMSConnectError
from ._models import BASE_FIELDS, MODELS
from ._registry import registry
from .testing import SimulatorServer

__all__ = ["EXIT_CODES", "UsageError", "main", "table"]


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


class UsageError(Exception):
    """A mistake on the command line itself (not in the connection): one line, exit code 2."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _json_value(option: str, text: str, *, source: str | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f" (from {source})" if source else ""
        raise UsageError(
            f"{option}{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
            f"give a JSON object such as '{{\"key\": \"value\"}}' (quote it for the shell)"
        ) from None


def _json_object(option: str, text: str, *, source: str | None = None) -> dict[str, Any]:
    value = _json_value(option, text, source=source)
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


def _config(args: argparse.Namespace) -> dict[str, Any]:
    """The connect() arguments from ``--config-json JSON|@FILE`` or ``--config-env VAR``.

    What ``lmsconnect simulate`` prints (``{"config": {...}}``) is accepted as is, so its output can be
    saved to a file and given back with ``@file``.
    """
    if getattr(args, "config_env", None):
        name = args.config_env
        text = os.environ.get(name)
        if text is None:
            raise UsageError(
                f"--config-env {name}: the environment variable {name} is not set; "
                f"export it with the connection's JSON (e.g. {name}=\"$(cat creds.json)\")"
            )
        option, source = "--config-env", f"${name}"
    else:
        text = args.config_json or ""
        option, source = "--config-json", None
        if text.startswith("@"):
            path = Path(text[1:])
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise UsageError(
                    f"--config-json @{path}: no such file; give the path of a JSON file (for example the "
                    f"output of `lmsconnect simulate SLUG > {path}`)"
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"--config-json @{path}: cannot read it ({_one_line(str(exc))})") from None
            source = str(path)
    value = _json_object(option, text, source=source)
    if set(value) == {"config"} and isinstance(value["config"], dict):
        value = value["config"]  # the line `lmsconnect simulate` prints
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
    connection = args.config_json is not None or args.config_env is not None
    if connection and not args.slug:
        raise UsageError("--config-json and --config-env need a connector: capabilities SLUG --config-json")
    if args.slug:
        caps = (asyncio.run(_connection_capabilities(args)) if connection
                else registry.get(args.slug).capabilities)
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


async def _connection_capabilities(args: argparse.Namespace) -> Any:
    """The table of one connection: for a connector with modes, the mode this account gets."""
    from ._api import connect

    async with connect(args.slug, **_config(args)) as lms:
        return await lms.resolve_capabilities()


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
    for name, mode in caps.modes.items():
        for key, action in mode.actions.items():
            if action != caps.actions[key]:
                flags = ",".join(sorted(f.value for f in action.flags))
                rows.append([f"mode {name}", key, ("yes" + (f" ({flags})" if flags else ""))
                             if action.supported else "no", action.note])
    if caps.mode:
        lines[0] = f"{caps.name} ({caps.slug}), this connection: mode {caps.mode}"
    if caps.note:
        lines += [*textwrap.wrap(caps.note, 100), ""]
    lines.append(table(_wrapped(rows), ["kind", "name", "supported", "fields / note"]))
    return "\n".join(lines) + "\n"


async def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    from ._api import connect

    async with connect(args.slug, **_config(args)) as lms:
        await _probe(lms, None)
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
        kwargs["params"] = _json_object("--params", args.params)
    if args.data:
        kwargs["data"] = _json_object("--data", args.data)
    if args.json_body:
        kwargs["json_body"] = _json_value("--json-body", args.json_body)
    async with connect(args.slug, **_config(args)) as lms:
        response = await lms.passthrough(args.method.upper(), args.path, **kwargs)
    try:
        body: Any = response.json()
    except LMSConnectError:
        body = response.text
    out.write(json.dumps({"status": response.status, "url": response.url, "body": body}, indent=2) + "\n")
    return 0 if response.status < 400 else 1


# -- simulator options ---------------------------------------------------------------------------------

_COMMON_OPTIONS = ("users", "courses", "enrollments", "seed", "latency")


class _SimOption:
    """One keyword argument of a simulator's ``__init__``: its type, default and meaning."""

    def __init__(self, name: str, hint: Any, default: Any, help: str) -> None:
        self.name = name
        self.hint = hint
        self.default = default
        self.help = help

    def type_name(self) -> str:
        return _type_name(self.hint)

    def default_text(self) -> str:
        if self.default is inspect.Parameter.empty:
            return "(required)"
        if isinstance(self.default, (tuple, list, set, frozenset)):
            return ",".join(str(v) for v in self.default) or "(empty)"
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if callable(self.default):
            return getattr(self.default, "__qualname__", repr(self.default))
        return str(self.default)


def _simulator_options(cls: type[Any]) -> dict[str, _SimOption]:
    """Options read from the simulator: the signature gives types and defaults, ``option_help`` meanings."""
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        helps.update(getattr(klass, "option_help", None) or {})
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # annotations naming what only a type checker imports: fall back to defaults
        hints = {}
    options = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = hints.get(name, type(param.default) if param.default not in (param.empty, None) else str)
        options[name] = _SimOption(name, hint, param.default, helps.get(name, ""))
    return options


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true/false"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if hint is str:
        return "text"
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        # "list of text or text": one item is a list of one, say the list only.
        names = [n for n in names if f"list of {n}" not in names]
        return " or ".join(dict.fromkeys(names)) + (" or none" if type(None) in args else "")
    if _is_collection(origin):
        return f"list of {_type_name(args[0]) if args else 'text'}"
    return "(Python only)"


def _is_collection(origin: Any) -> bool:
    return origin in (tuple, list, set, frozenset, collections.abc.Iterable, collections.abc.Sequence)


def _coerce(option: str, hint: Any, text: str) -> Any:
    """`text` from the command line as the type the simulator declares; `UsageError` otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise UsageError(f"{option} takes true or false, got {text!r}")
    if hint in (int, float):
        try:
            number: float = int(text) if hint is int else float(text)
        except ValueError:
            kind = "a whole number" if hint is int else "a number"
            raise UsageError(f"{option} takes {kind}, got {text!r}") from None
        if math.isnan(number) or number < 0:
            raise UsageError(f"{option} must be a number >= 0, got {text!r}")
        return number
    if hint is str:
        return text
    if origin is typing.Literal:
        if text in args:
            return text
        raise UsageError(f"{option} takes one of {', '.join(map(str, args))}; got {text!r}")
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        # A list is tried before plain text, so "a,b" is two items where the simulator takes either.
        candidates = sorted((a for a in args if a is not type(None)), key=lambda a: a is str)
        for candidate in candidates:
            try:
                return _coerce(option, candidate, text)
            except UsageError as exc:
                last = exc
        raise last
    if _is_collection(origin):
        item = args[0] if args else str
        return tuple(_coerce(option, item, part.strip()) for part in text.split(",") if part.strip())
    raise UsageError(f"{option} cannot be set from the command line (it is for Python callers)")


def _simulator_kwargs(slug: str, cls: type[Any], args: argparse.Namespace) -> dict[str, Any]:
    known = _simulator_options(cls)
    given: list[tuple[str, str, str]] = []  # (name, how it was given, value)
    for name in _COMMON_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            given.append((name, f"--{name}", value))
    for item in args.option or ():
        key, sep, value = item.partition("=")
        name = key.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--option takes NAME=VALUE, got {item!r} (e.g. --option fault_rate=0.1)")
        given.append((name, f"--option {name}", value))
    kwargs: dict[str, Any] = {}
    for name, how, value in given:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            raise UsageError(
                f"the {slug} simulator has no option {name!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (`lmsconnect simulate {slug} --help-options` lists them)"
            )
        kwargs[name] = _coerce(how, known[name].hint, value)
    return kwargs


def _print_simulator_options(slug: str, cls: type[Any], out: TextIO) -> int:
    rows = [[o.name, o.type_name(), o.default_text(), o.help or "(not described by the simulator)"]
            for o in _simulator_options(cls).values()]
    out.write(f"Options of the {slug} simulator ({cls.__module__}.{cls.__name__}); set them with "
              f"--option NAME=VALUE ({', '.join(_COMMON_OPTIONS)} also as --NAME VALUE):\n\n")
    out.write(table(_wrapped(rows, 60), ["option", "type", "default", "meaning"]) + "\n")
    return 0


async def _cmd_simulate(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import load_simulator

    cls = load_simulator(args.slug)
    if args.help_options:
        return _print_simulator_options(args.slug, cls, out)
    options = _simulator_kwargs(args.slug, cls, args)
    try:
        sim = cls(**options)
    except (TypeError, ValueError) as exc:  # the simulator's own validation of the options
        raise UsageError(f"the {args.slug} simulator refused these options: {_one_line(str(exc))}") from None
    try:
        await sim.start(args.host, args.port)
    except OSError as exc:
        raise UsageError(
            f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}; "
            f"choose another --port (0 picks a free one)"
        ) from None
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
    tables = [registry.get(s).capabilities for s in slugs]
    pages = {target / f"{t.slug}.md": t.to_markdown() for t in tables}
    pages[target / "README.md"] = matrix_markdown(tables)
    # The comparison with Kombo and Truto is a page of the docs, beside the capability folder.
    comparison = Path(args.comparison) if args.comparison else target.parent / "comparison.md"
    pages[comparison] = comparison_markdown(
        tables, pages=Path(os.path.relpath(target.resolve(), comparison.resolve().parent)).as_posix()
    )
    stale = [path for path, text in pages.items() if not path.exists() or path.read_text() != text]
    if args.check:
        again = f"lmsconnect docs --out {target} --comparison {comparison} {' '.join(slugs)}"
        for path in stale:
            out.write(f"stale: {path} (run `{again}`)\n")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(pages[path])
        out.write(f"wrote {path}\n")
    return 0


async def _probe(lms: Connector[Any], models: list[str] | None) -> None:
    """One read first, so that a wrong key or host is said once (exit 2), not once per model."""
    supported = [k for k, m in lms.capabilities.models.items() if m.supported]
    first = (models or supported or [None])[0]
    if first is None or first not in supported:
        return  # nothing to read, or a model the sync itself will refuse with NotSupported
    try:
        async for _ in lms.list(first):
            break
    except (AuthenticationError, ConfigurationError):
        raise
    except LMSConnectError:
        return  # anything else is this model's failure: the sync reports it per model


async def _cmd_sync(args: argparse.Namespace, out: TextIO) -> int:
    from ._sync import cli_sync

    config = _config(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    for model in models or ():
        if model not in MODELS:
            close = difflib.get_close_matches(model, list(MODELS), n=1)
            raise UsageError(
                f"--models: no model {model!r}"
                + (f"; did you mean {close[0]!r}?" if close else "")
                + f" (models: {', '.join(MODELS)})"
            )

    confirm: bool | list[str] = False
    if args.confirm_deletions == "all":
        confirm = True
    elif args.confirm_deletions:
        confirm = [m.strip() for m in args.confirm_deletions.split(",") if m.strip()]
    # Rejected credentials or an unknown host stop the sync after one call; cli_sync raises that error.
    return await cli_sync(
        args.slug,
        config,
        args.db,
        out=out,
        progress=not args.quiet,
        connection=args.connection,
        models=models,
        as_json=args.json,
        confirm_deletions=confirm,
        progress_every=args.progress_every,
    )


async def _cmd_changes(args: argparse.Namespace, out: TextIO) -> int:
    from ._sync import cli_changes

    return await cli_changes(args.db, args.since, args.json, out, connection=args.connection)


async def _cmd_workers(args: argparse.Namespace, out: TextIO) -> int:
    from ._workers import cli_command

    return await cli_command(args, out)


async def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo

    return await run_demo(db=args.db, out=out)


# -- the parser ----------------------------------------------------------------------------------------

EXIT_CODES = """\
exit codes:
  0    done
  1    ran, but partly failed: a model's read failed (sync), problems found (check),
       the vendor answered >= 400 (passthrough), a plugin is broken (plugins), pages stale (docs --check)
  2    could not run: a usage, configuration or credentials mistake, or the vendor could not be reached
  3    sync: every read completed but the mass-deletion guard held deletions (see --confirm-deletions)
  70   internal error (a bug): rerun with --debug for the traceback and report it
  130  interrupted"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535 (0: a free one), not {text!r}")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise argparse.ArgumentTypeError(f"a number of seconds > 0, not {text!r}")
    return seconds


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the command's --help, exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {_one_line(message)}; see `{self.prog} --help`\n")


def _add_global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the subcommand; SUPPRESS keeps a subcommand from resetting the value.
    default: Any = None if top else argparse.SUPPRESS
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="show the traceback of an error (and log at debug level)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default,
                   type=str.lower, help="log records at this level and above to stderr (default: warning)")


def _add_config_options(p: argparse.ArgumentParser, *, required: bool = True, what: str = "") -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--config-json", metavar="JSON|@FILE",
        help="the connect() arguments as a JSON object, or @FILE to read them from a file (keeps secrets "
        "out of the process list); what `lmsconnect simulate` prints is accepted as is" + what,
    )
    group.add_argument(
        "--config-env", metavar="VAR",
        help="read the connect() arguments as JSON from the environment variable VAR" + what,
    )


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    slugs = registry.slugs()
    slug_help = f"the connector: {', '.join(slugs) or '(none installed)'}"
    parser = _Parser(
        prog="lmsconnect",
        description=textwrap.fill(
            "One unified view of learning-management systems: inspect connectors, check credentials, "
            "sync into a state store, read the change feed, run offline simulators.", 80
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lmsconnect {__version__}",
                        help="print the version and exit")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=summary, description=textwrap.fill(description, 80), epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_global_options(p, top=False)
        return p

    p = command("plugins", "list installed connectors (and broken plugins)",
                "List the installed connector plugins with their distribution and version; a plugin that "
                "failed to load is shown with the reason.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = command("capabilities", "a connector's capability table, or the matrix of all",
                "Print which unified models, fields and actions a connector supports, with its notes; "
                "without a slug, the matrix across every installed connector.")
    p.add_argument("slug", nargs="?", help=slug_help + " (default: all, as a matrix)")
    _add_config_options(p, required=False, what=" and print that connection's table (for a connector "
                        "with modes, the mode this account gets) instead of the class's")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the table(s) as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print the table(s) as Markdown")

    p = command("check", "test credentials: scopes and one read per model",
                "Connect and test the credentials with reads only: per model and action, ok, the "
                "vendor's name of a missing permission, or the error. A wrong key or an unreachable "
                "host is one error line (exit 2).")
    p.add_argument("slug", help=slug_help)
    _add_config_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = command("passthrough", "a raw vendor call with the connector's auth",
                "Send one raw request to the vendor API with the connector's authentication and rate "
                "budget; prints the status, URL and body as JSON.")
    p.add_argument("slug", help=slug_help)
    p.add_argument("method", help="the HTTP method, e.g. GET")
    p.add_argument("path", help="the path under the connector's API root, e.g. /v1/users")
    _add_config_options(p)
    p.add_argument("--params", metavar="JSON", help="query parameters as a JSON object")
    p.add_argument("--data", metavar="JSON", help="form fields as a JSON object")
    p.add_argument("--json-body", metavar="JSON", help="a JSON request body")

    p = command("simulate", "run a connector's offline simulator until terminated",
                "Serve a connector's simulator of its vendor API and print the connect() arguments that "
                "reach it as one JSON line ({\"config\": {...}}: save it and pass it back with "
                "--config-json @FILE). Stops on Ctrl-C or SIGTERM.")
    p.add_argument("slug", help=slug_help)
    p.add_argument("--help-options", action="store_true",
                   help="list this simulator's options (--option NAME=VALUE) with their meaning, and exit")
    p.add_argument("--port", type=_port, default=0, help="the port to listen on (default 0: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    for name in _COMMON_OPTIONS:  # described once, by the simulators' base class
        p.add_argument(f"--{name}", metavar="SECONDS" if name == "latency" else "N",
                       help=SimulatorServer.option_help[name])
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="a simulator-specific option (repeatable), e.g. --option fault_rate=0.1; "
                   "see --help-options")

    p = command("sync", "sync a connection into a state store, with live progress",
                "Read every supported model (or --models) into the state store, recording changes and "
                "deletions for the change feed. One read first verifies the credentials and the host, so "
                "a wrong key is reported once. Progress per model (records, of how many when the vendor "
                "says, calls, rate, ETA, rate-budget waits) is redrawn live on a terminal, and written as "
                "a line every --progress-every seconds when the output is a pipe or a file.")
    p.add_argument("slug", help=slug_help)
    _add_config_options(p)
    p.add_argument("--db", required=True, metavar="PATH|URL",
                   help="the state store: a SQLite file (created if missing) or postgresql://user@host/db")
    p.add_argument("--connection", metavar="NAME",
                   help="the connection's name in the store (default: derived from slug and config)")
    p.add_argument("--models", metavar="M1,M2",
                   help="only these models, comma-separated (e.g. users,courses; default: every "
                   "supported one)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object, no progress")
    p.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    p.add_argument("--progress-every", type=_seconds, default=10.0, metavar="SECONDS",
                   help="when the output is not a terminal (a pipe, a file, a log): write a progress "
                   "line per model still reading every SECONDS (default 10); a terminal is redrawn live")
    p.add_argument(
        "--confirm-deletions", nargs="?", const="all", metavar="MODELS",
        help="accept deletions the mass-deletion guard held (SYNC.DELETIONS_HELD): for the models "
        "given (comma-separated, e.g. users,courses) or, without a value, for every model",
    )

    p = command("changes", "print the change feed of a store",
                "Print the changes (created, updated, deleted) recorded by syncs after a cursor; the last "
                "line says the cursor to pass as --since next time.")
    p.add_argument("--db", required=True, metavar="PATH|URL",
                   help="the state store a sync wrote: a SQLite file or postgresql://user@host/db")
    p.add_argument("--since", type=int, default=0, metavar="CURSOR",
                   help="print changes after this cursor (default 0: from the start)")
    p.add_argument("--connection", metavar="NAME", help="only this connection's changes")
    p.add_argument("--json", action="store_true", help="one JSON object per line (JSON Lines)")

    p = command("docs", "generate docs/capabilities and docs/comparison.md from the capability tables",
                "Write one Markdown page per connector and the matrix, from the capability tables, and the "
                "field-by-field comparison with Kombo and Truto.")
    p.add_argument("slugs", nargs="*", metavar="SLUG", help="connectors to include (default: all installed)")
    p.add_argument("--out", default="docs/capabilities", metavar="DIR",
                   help="the folder to write (default docs/capabilities)")
    p.add_argument("--comparison", metavar="FILE",
                   help="the comparison page to write (default: comparison.md beside the --out folder)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")

    p = command("demo", "the main job: simulators, sync, actions, quirks, change feed",
                "Run every installed connector against its bundled simulator: a full sync into SQLite, "
                "actions and their quirks, and the change feed.")
    p.add_argument("--db", default="lmsconnect-demo/demo.sqlite", metavar="PATH",
                   help="the SQLite store the demo writes (default lmsconnect-demo/demo.sqlite)")

    from ._workers import add_cli_commands  # worker, enqueue, schedule, connections

    add_cli_commands(sub)
    return parser


_SYNC_COMMANDS = {"plugins": _cmd_plugins, "capabilities": _cmd_capabilities, "docs": _cmd_docs}
_ASYNC_COMMANDS = {
    "check": _cmd_check, "passthrough": _cmd_passthrough, "simulate": _cmd_simulate,
    "sync": _cmd_sync, "changes": _cmd_changes, "demo": _cmd_demo,
    "worker": _cmd_workers, "enqueue": _cmd_workers, "schedule": _cmd_workers, "connections": _cmd_workers,
}


def _error_line(exc: LMSConnectError) -> str:
    text = str(exc)
    if isinstance(exc, ConfigurationError) and exc.hint == ConfigurationError.hint:
        # On the command line the connect() arguments came from --config-json or --config-env.
        text = text.removesuffix(f". {exc.hint}") + (
            ". Fix the connection settings given with --config-json or --config-env"
        )
    return _one_line(text)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (see ``EXIT_CODES``)."""
    args = _parser().parse_args(argv)
    debug = bool(args.debug)
    level = args.log_level or ("debug" if debug else "warning")
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stream = out or sys.stdout
    try:
        if args.command in _SYNC_COMMANDS:
            return _SYNC_COMMANDS[args.command](args, stream)
        return asyncio.run(_ASYNC_COMMANDS[args.command](args, stream))
    except (UsageError, LMSConnectError) as exc:
        if debug:
            traceback.print_exc()
        line = _error_line(exc) if isinstance(exc, LMSConnectError) else _one_line(str(exc))
        sys.stderr.write(f"error: {line}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if not exc.filename:
            return _internal_error(exc, debug)
        # A file or folder named on the command line: missing, not writable, a directory, ...
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"error: cannot use {exc.filename}: {exc.strerror or exc}\n")
        return 2
    except Exception as exc:
        return _internal_error(exc, debug)


def _internal_error(exc: Exception, debug: bool) -> int:
    if debug:
        raise exc
    # Not a mistake of the user's: a bug. Say so in one line; the traceback is one flag away.
    sys.stderr.write(
        f"error: internal error ({type(exc).__name__}: {_one_line(str(exc))}); rerun with --debug for "
        f"the traceback and report it\n"
    )
    return 70


if __name__ == "__main__":
    raise SystemExit(main())
