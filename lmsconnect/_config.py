"""Connector configuration: an attrs class per connector, described to users through `ConfigField`."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

import attrs

from ._errors import ConfigurationError
from ._secrets import Secret, scrub

__all__ = ["ConfigField", "build_config", "config_field", "describe_config"]

C = TypeVar("C")
_META = "lmsconnect"


def config_field(
    *, help: str, secret: bool = False, default: Any = attrs.NOTHING, example: str | None = None
) -> Any:
    """Declare one connect() argument on a connector's config class.

    >>> @attrs.frozen(kw_only=True)
    ... class ToyConfig:
    ...     base_url: str = config_field(help="Where the Toy LMS lives", example="https://toy.example")
    ...     api_key: Secret = config_field(help="API key from Settings > API", secret=True)
    """
    return attrs.field(
        default=default, metadata={_META: {"help": help, "secret": secret, "example": example}}
    )


@attrs.frozen(kw_only=True)
class ConfigField:
    """One configuration field as users see it (CLI, docs, error messages)."""

    name: str
    type: str
    required: bool
    secret: bool
    help: str
    default: Any = None
    example: str | None = None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " | ".join(_type_name(a) for a in args)
    if tp is Secret:
        return "str"
    return getattr(tp, "__name__", str(tp))


def describe_config(cls: type[Any]) -> tuple[ConfigField, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for attribute in attrs.fields(cls):
        meta = attribute.metadata.get(_META, {})
        required = attribute.default is attrs.NOTHING
        default = None if required else attribute.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = None
        out.append(
            ConfigField(
                name=attribute.name,
                type=_type_name(hints[attribute.name]),
                required=required,
                secret=bool(meta.get("secret")) or hints[attribute.name] is Secret,
                help=meta.get("help", ""),
                default=default,
                example=meta.get("example"),
            )
        )
    return tuple(out)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, arg, value)
            except ConfigurationError as exc:
                errors.append(exc.message)
        raise ConfigurationError(errors[0] if errors else f"{name}: invalid value")
    if tp is Secret:
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        raise ConfigurationError(f"{name} must be a string")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        raise ConfigurationError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        # int(2.7) would silently truncate; True is not a count.
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigurationError(f"{name} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{name} must be an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigurationError(f"{name} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, Secret):
            raise ConfigurationError(f"{name} is not a secret; pass a plain string")
        if not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a string, got {type(value).__name__}")
        return value
    return value


def build_config(cls: type[C], slug: str, values: Mapping[str, Any]) -> C:
    """The config instance from connect() keyword arguments; errors name the field, never its value
    when it is a secret."""
    fields = {f.name: f for f in describe_config(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigurationError(
            f"unknown config field(s) {', '.join(unknown)} for {slug!r}; "
            f"it takes: {', '.join(fields)}",
            connector=slug,
        )
    missing = [n for n, f in fields.items() if f.required and values.get(n) in (None, "")]
    if missing:
        described = "; ".join(f"{n}: {fields[n].help}" for n in missing)
        raise ConfigurationError(
            f"missing required config field(s) for {slug!r}: {described}", connector=slug
        )
    hints = typing.get_type_hints(cls)
    # A secret put in the wrong field would be quoted back as an ill-typed value: scrub every
    # secret given from the messages below.
    given_secrets = [
        v.reveal() if isinstance(v, Secret) else str(v)
        for n, v in values.items()
        if fields[n].secret and v is not None
    ]
    kwargs = {}
    for name, value in values.items():
        problem: str | None = None
        try:
            kwargs[name] = _coerce(name, hints[name], value)
        except ConfigurationError as exc:
            problem = (
                f"{name} must be a string (value not shown: secret)" if fields[name].secret else exc.message
            )
        if problem is not None:
            # Raised outside the except block: the error caught (which may quote a secret given in the
            # wrong field) must not survive as __context__ of the scrubbed one.
            raise ConfigurationError(scrub(problem, given_secrets), connector=slug)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        problem = scrub(f"invalid config for {slug!r}: {exc}", given_secrets)
    raise ConfigurationError(problem, connector=slug)
