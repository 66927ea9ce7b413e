"""Capability tables: what a connector supports, as data.

A plugin declares its table once; the core enforces it (`NotSupported` quoting the table), the CLI prints
it, `docs/capabilities/` is generated from it, and the conformance kit checks the connector against it.

>>> caps = Capabilities.build(
...     slug="toy", name="Toy LMS",
...     models={"users": model_support("first_name", "status", notes={"status": "from the active flag"})},
...     actions={"deactivate_course": action_support("course_id", flags={"destructive"}, note="deletes")},
...     features={"passthrough": ""},
... )
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypeVar

import attrs

from ._actions import ACTIONS, ActionName, action_fields
from ._errors import NotSupported
from ._models import BASE_FIELDS, MODELS, ModelName, model_fields

__all__ = [
    "ActionCapability",
    "ActionFlag",
    "Capabilities",
    "FeatureCapability",
    "FeatureName",
    "FieldCapability",
    "ModelCapability",
    "Support",
    "action_support",
    "model_support",
]

FeatureName = Literal["passthrough", "scope_testing", "per_model_tests"]
FEATURES: Final[tuple[FeatureName, ...]] = ("passthrough", "scope_testing", "per_model_tests")
FEATURE_TITLES: Final = {
    "passthrough": "API Passthrough",
    "scope_testing": "Scope Testing",
    "per_model_tests": "Per Model Tests",
}


class Support(str, enum.Enum):
    SUPPORTED = "supported"
    PARTIAL = "partial"
    UNSUPPORTED = "unsupported"

    def __str__(self) -> str:
        return self.value


class ActionFlag(str, enum.Enum):
    DESTRUCTIVE = "destructive"  # irreversible
    ASYNCHRONOUS = "asynchronous"  # the vendor applies it later; results say `accepted`
    ROLLBACK = "rollback"  # the connector undoes a vendor side effect and reports an error

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class FieldCapability:
    support: Support
    note: str = ""


_UNSUPPORTED_FIELD: Final = FieldCapability(support=Support.UNSUPPORTED)


@attrs.frozen(kw_only=True)
class ModelCapability:
    supported: bool
    note: str = ""
    fields: Mapping[str, FieldCapability] = attrs.field(factory=dict)
    # False: read only when asked for (`sync(models=...)`, `lms.list`), because it costs calls the
    # default models do not make (the note says how many); `sync` without `models=` leaves it out.
    by_default: bool = True

    def field(self, name: str) -> FieldCapability:
        return self.fields.get(name, _UNSUPPORTED_FIELD)

    def supported_fields(self) -> tuple[str, ...]:
        return tuple(n for n, f in self.fields.items() if f.support is Support.SUPPORTED)


@attrs.frozen(kw_only=True)
class ActionCapability:
    supported: bool
    flags: frozenset[ActionFlag] = frozenset()
    note: str = ""
    fields: Mapping[str, FieldCapability] = attrs.field(factory=dict)

    @property
    def destructive(self) -> bool:
        return ActionFlag.DESTRUCTIVE in self.flags

    @property
    def asynchronous(self) -> bool:
        return ActionFlag.ASYNCHRONOUS in self.flags

    @property
    def rollback(self) -> bool:
        return ActionFlag.ROLLBACK in self.flags

    def field(self, name: str) -> FieldCapability:
        return self.fields.get(name, _UNSUPPORTED_FIELD)


@attrs.frozen(kw_only=True)
class FeatureCapability:
    supported: bool
    note: str = ""


def _spec_fields(
    names: Iterable[str],
    partial: Mapping[str, str],
    notes: Mapping[str, str],
    unsupported: Mapping[str, str] | None = None,
) -> dict[str, FieldCapability]:
    fields = {n: FieldCapability(support=Support.SUPPORTED, note=notes.get(n, "")) for n in names}
    for name, note in partial.items():
        fields[name] = FieldCapability(support=Support.PARTIAL, note=note)
    for name in notes:
        if name not in fields:
            raise ValueError(f"a note is given for {name!r}, which is not listed as supported or partial")
    for name, reason in (unsupported or {}).items():
        if name in fields:
            raise ValueError(f"{name!r} is listed as supported or partial and as unsupported")
        fields[name] = FieldCapability(support=Support.UNSUPPORTED, note=reason)
    return fields


def model_support(
    *fields: str,
    note: str = "",
    notes: Mapping[str, str] | None = None,
    partial: Mapping[str, str] | None = None,
    unsupported: Mapping[str, str] | None = None,
    by_default: bool = True,
) -> ModelCapability:
    """A supported model: the listed fields supported (``id``, ``remote_id``, ``changed_at``,
    ``remote_deleted_at`` and ``remote_data`` implied), ``partial`` fields with their note, the rest
    unsupported — ``unsupported`` gives the reason for some of them (the vendor's API does not return
    it, it would cost a call per record, ...), which the docs show. ``by_default=False``: a sync reads
    the model only when `models=` names it (say in ``note`` what it costs)."""
    listed = tuple(dict.fromkeys(BASE_FIELDS + fields))
    return ModelCapability(
        supported=True,
        note=note,
        fields=_spec_fields(listed, partial or {}, notes or {}, unsupported),
        by_default=by_default,
    )


def action_support(
    *fields: str,
    flags: Iterable[str | ActionFlag] = (),
    note: str = "",
    notes: Mapping[str, str] | None = None,
    partial: Mapping[str, str] | None = None,
) -> ActionCapability:
    """A supported action: the listed input fields supported (paths as in the coverage tables)."""
    return ActionCapability(
        supported=True,
        flags=frozenset(ActionFlag(f) for f in flags),
        note=note,
        fields=_spec_fields(fields, partial or {}, notes or {}),
    )


@attrs.frozen(kw_only=True)
class Capabilities:
    """A connector's whole table: every model, action and feature, supported or not.

    A connector whose abilities depend on the account (TalentLMS with or without API v2) also lists its
    ``modes``: the table of a connection in each mode, by name. Its class table then describes every mode
    (its flags are those of any mode), and a connection's ``lms.capabilities`` is one of the modes once
    `Connector.resolve_capabilities` has found out which (``mode`` names it).
    """

    slug: str
    name: str
    models: Mapping[ModelName, ModelCapability]
    actions: Mapping[ActionName, ActionCapability]
    features: Mapping[FeatureName, FeatureCapability]
    #: What the whole table depends on, e.g. which API a connection uses.
    note: str = ""
    #: Which of the class's modes this connection table is ("" for a class table).
    mode: str = ""
    #: The table of a connection in each mode, by mode name (empty when there is one way only).
    modes: Mapping[str, Capabilities] = attrs.field(factory=dict)

    @classmethod
    def build(
        cls,
        *,
        slug: str,
        name: str,
        models: Mapping[ModelName, ModelCapability],
        actions: Mapping[ActionName, ActionCapability],
        features: Mapping[FeatureName, str],
        unsupported_notes: Mapping[str, str] | None = None,
        note: str = "",
        mode: str = "",
        modes: Mapping[str, Capabilities] | None = None,
    ) -> Capabilities:
        """Complete a table: models/actions/features not given become unsupported (with the note in
        ``unsupported_notes`` under their key, if any). Unknown model, action or field names raise
        ValueError, so a typo fails at import, not in production."""
        extra = unsupported_notes or {}
        full_models = _complete(
            slug, "model", models, MODELS, model_fields,
            lambda key: ModelCapability(supported=False, note=extra.get(key, "")),
        )
        full_actions = _complete(
            slug, "action", actions, ACTIONS, action_fields,
            lambda key: ActionCapability(supported=False, note=extra.get(key, "")),
        )
        for fkey in set(features) - set(FEATURES):
            raise ValueError(f"{slug}: unknown feature {fkey!r}; expected one of {', '.join(FEATURES)}")
        full_features: dict[FeatureName, FeatureCapability] = {
            f: FeatureCapability(supported=f in features, note=features.get(f, extra.get(f, "")))
            for f in FEATURES
        }
        _check_modes(slug, modes or {})
        return cls(
            slug=slug, name=name, models=full_models, actions=full_actions, features=full_features,
            note=note, mode=mode, modes=dict(modes or {}),
        )

    def variant(
        self,
        *,
        mode: str = "",
        note: str | None = None,
        actions: Mapping[ActionName, ActionCapability] | None = None,
        modes: Mapping[str, Capabilities] | None = None,
    ) -> Capabilities:
        """This table with some actions replaced (fields completed and checked as in `build`): a
        connector's mode tables, and its class table over them, from one base table.

        >>> v2 = base.variant(mode="v2", actions={"deactivate_course": action_support("course_id")})
        >>> table = base.variant(note="two ways", modes={"v2": v2, "v1": base.variant(mode="v1")})
        """
        replaced = _complete(
            self.slug, "action", {**self.actions, **(actions or {})}, ACTIONS, action_fields,
            lambda key: self.actions[key],
        )
        _check_modes(self.slug, modes or {})
        return attrs.evolve(
            self, mode=mode, note=self.note if note is None else note, actions=replaced,
            modes=dict(modes or {}),
        )

    # -- enforcement ------------------------------------------------------------------------------

    def require_model(self, model: ModelName) -> None:
        """Raise `NotSupported` quoting the table when `model` cannot be read."""
        cap = self.models[model]
        if not cap.supported:
            raise NotSupported(
                f"{self.name} does not support reading {model!r}: the capability table marks it "
                f"unsupported" + (f" ({cap.note})" if cap.note else ""),
                connector=self.slug,
            )

    def require_action(self, action: ActionName) -> None:
        """Raise `NotSupported` quoting the table when `action` cannot be performed."""
        cap = self.actions[action]
        if not cap.supported:
            raise NotSupported(
                f"{self.name} does not support the action {action!r}: the capability table marks it "
                f"unsupported" + (f" ({cap.note})" if cap.note else ""),
                connector=self.slug,
            )

    def require_action_field(self, action: ActionName, field: str, *, given: bool) -> None:
        """Raise `NotSupported` when input sets a field the table marks unsupported for `action`."""
        if given and self.actions[action].field(field).support is Support.UNSUPPORTED:
            raise NotSupported(
                f"{self.name} cannot take {field!r} in {action!r}: the capability table marks it "
                f"unsupported; leave it unset",
                connector=self.slug,
            )

    def require_feature(self, feature: FeatureName) -> None:
        cap = self.features[feature]
        if not cap.supported:
            raise NotSupported(
                f"{self.name} does not offer {FEATURE_TITLES[feature]}"
                + (f" ({cap.note})" if cap.note else ""),
                connector=self.slug,
            )

    # -- rendering --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``lmsconnect capabilities SLUG --json``."""

        def fields(m: Mapping[str, FieldCapability]) -> dict[str, Any]:
            return {k: {"support": v.support.value, "note": v.note} for k, v in m.items()}

        data: dict[str, Any] = {
            "slug": self.slug,
            "name": self.name,
            "models": {
                k: {
                    "supported": v.supported,
                    "by_default": v.by_default,
                    "note": v.note,
                    "fields": fields(v.fields),
                }
                for k, v in self.models.items()
            },
            "actions": {
                k: {
                    "supported": v.supported,
                    "flags": sorted(f.value for f in v.flags),
                    "note": v.note,
                    "fields": fields(v.fields),
                }
                for k, v in self.actions.items()
            },
            "features": {
                k: {"supported": v.supported, "note": v.note} for k, v in self.features.items()
            },
        }
        # Only where used, so the JSON of a connector with one way of working is as it always was.
        if self.note:
            data["note"] = self.note
        if self.mode:
            data["mode"] = self.mode
        if self.modes:
            data["modes"] = {k: v.to_dict() for k, v in self.modes.items()}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capabilities:
        """Rebuild a table from `to_dict` output (ValueError/KeyError on a malformed one)."""

        def fields(m: Mapping[str, Any]) -> dict[str, FieldCapability]:
            return {
                k: FieldCapability(support=Support(v["support"]), note=v["note"]) for k, v in m.items()
            }

        return cls(
            slug=data["slug"],
            name=data["name"],
            models={
                k: ModelCapability(
                    supported=v["supported"],
                    note=v["note"],
                    fields=fields(v["fields"]),
                    by_default=v.get("by_default", True),
                )
                for k, v in data["models"].items()
            },
            actions={
                k: ActionCapability(
                    supported=v["supported"],
                    flags=frozenset(ActionFlag(f) for f in v["flags"]),
                    note=v["note"],
                    fields=fields(v["fields"]),
                )
                for k, v in data["actions"].items()
            },
            features={
                k: FeatureCapability(supported=v["supported"], note=v["note"])
                for k, v in data["features"].items()
            },
            note=data.get("note", ""),
            mode=data.get("mode", ""),
            modes={k: cls.from_dict(v) for k, v in data.get("modes", {}).items()},
        )

    def to_markdown(self) -> str:
        """The generated docs page for this connector."""
        out = [
            f"# {self.name} (`{self.slug}`) capabilities",
            "",
            "<!-- Generated from the connector's capability table by `lmsconnect docs`. Do not edit. -->",
            "",
        ]
        if self.note:
            out += [_md(self.note), ""]
        out += ["## Models", ""]
        out += _markdown_sections(
            self.models, "field", lambda m: "" if m.by_default else "read by `sync` only when asked for"
        )
        out += ["## Actions", ""]
        out += _markdown_sections(
            self.actions,
            "input field",
            lambda a: ", ".join(f"**{f.value}**" for f in sorted(a.flags)),
        )
        out += ["## Features", "", "| feature | supported | note |", "|---|---|---|"]
        out += [
            f"| {FEATURE_TITLES[k]} | {'yes' if v.supported else 'no'} | {_md(v.note)} |"
            for k, v in self.features.items()
        ]
        out += self._markdown_modes()
        return "\n".join(out) + "\n"

    def _markdown_modes(self) -> list[str]:
        """Per mode, what a connection in it does where that differs from the class table above."""
        if not self.modes:
            return []
        out = ["", "## Connection modes", ""]
        for name, table in self.modes.items():
            out += [f"### Mode `{name}`", ""]
            if table.note:
                out += [_md(table.note), ""]
            differing = {k: a for k, a in table.actions.items() if a != self.actions[k]}
            for key, action in differing.items():
                flags = ", ".join(f"**{f.value}**" for f in sorted(action.flags)) or "no flags"
                state = f"({flags})" if action.supported else "(not supported)"
                out += [f"- `{key}` {state}: {_md(action.note)}"]
            if not differing:
                out += ["Actions as in the table above."]
            out.append("")
        return out[:-1]


def _check_modes(slug: str, modes: Mapping[str, Capabilities]) -> None:
    for name, table in modes.items():
        if table.slug != slug or table.mode != name or table.modes:
            raise ValueError(
                f"{slug}: mode {name!r} must be a table of the same slug, made with mode={name!r} and no "
                "modes of its own"
            )


K = TypeVar("K", bound=str)
E = TypeVar("E", ModelCapability, ActionCapability)


def _complete(
    slug: str,
    kind: str,
    given: Mapping[K, E],
    keys: Iterable[K],
    fields_of: Callable[[K], tuple[str, ...]],
    unsupported: Callable[[K], E],
) -> dict[K, E]:
    """Every key of a table part (models or actions) with every one of its fields; the ones not given
    unsupported. Unknown keys or fields raise ValueError naming them."""
    keys = list(keys)
    for key in set(given) - set(keys):
        raise ValueError(f"{slug}: unknown {kind} {key!r}; expected one of {', '.join(keys)}")
    full: dict[K, E] = {}
    for key in keys:
        entry = given.get(key) or unsupported(key)
        unknown = set(entry.fields) - set(fields_of(key))
        if unknown:
            what = "field(s)" if kind == "model" else "input field(s)"
            raise ValueError(f"{slug}: {kind} {key!r} has no {what} {sorted(unknown)}")
        full[key] = attrs.evolve(entry, fields={f: entry.field(f) for f in fields_of(key)})
    return full


def _markdown_sections(
    entries: Mapping[Any, ModelCapability] | Mapping[Any, ActionCapability],
    column: str,
    flags: Callable[[Any], str],
) -> list[str]:
    """One section per supported model or action (its note and field table), then the unsupported."""
    out: list[str] = []
    for key, entry in entries.items():
        if not entry.supported:
            continue
        shown = flags(entry)
        out += [f"### {key}" + (f" ({shown})" if shown else ""), ""]
        if entry.note:
            out += [_md(entry.note), ""]
        out += [f"| {column} | support | note |", "|---|---|---|"]
        # Unsupported fields are shown when the table says why; the others are named in one line.
        out += [
            f"| `{f}` | {c.support.value} | {_md(c.note)} |"
            for f, c in entry.fields.items()
            if c.support is not Support.UNSUPPORTED or c.note
        ]
        out.append("")
        silent = [
            f"`{f}`" for f, c in entry.fields.items() if c.support is Support.UNSUPPORTED and not c.note
        ]
        if silent:
            out += ["Not available: " + ", ".join(silent) + ".", ""]
    missing = [
        f"`{k}`" + (f" ({_md(e.note)})" if e.note else "") for k, e in entries.items() if not e.supported
    ]
    if missing:
        out += ["Not supported: " + ", ".join(missing), ""]
    return out


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _cell(supported: bool, partial: bool = False) -> str:
    return "partial" if partial else ("yes" if supported else "—")


def matrix_rows(tables: Iterable[Capabilities]) -> tuple[list[str], list[list[str]]]:
    """A capability matrix across connectors: header and rows (models, actions with flags, features)."""
    tables = list(tables)
    header = ["", *(t.slug for t in tables)]
    rows: list[list[str]] = []
    for key in MODELS:
        rows.append([f"model {key}", *(_model_cell(t.models[key]) for t in tables)])
    for akey in ACTIONS:
        rows.append([f"action {akey}", *(_mode_cells(t, akey) for t in tables)])
    for fkey in FEATURES:
        rows.append(
            [f"feature {fkey}", *(_cell(t.features[fkey].supported) for t in tables)]
        )
    return header, rows


def _model_cell(cap: ModelCapability) -> str:
    if not cap.supported:
        return "—"
    partial = any(f.support is Support.PARTIAL for f in cap.fields.values())
    cell = "partial" if partial else "yes"
    return cell if cap.by_default else f"{cell} (on request)"


def _mode_cells(table: Capabilities, action: ActionName) -> str:
    """An action's cell; where a connector's modes differ on it, one cell per mode (``v2: yes; v1: ...``)."""
    cells = {name: _action_cell(t.actions[action]) for name, t in table.modes.items()}
    if len(set(cells.values())) > 1:
        return "; ".join(f"{name}: {cell}" for name, cell in cells.items())
    return _action_cell(table.actions[action])


def _action_cell(cap: ActionCapability) -> str:
    if not cap.supported:
        return "—"
    flags = ",".join(sorted(f.value for f in cap.flags))
    return f"yes ({flags})" if flags else "yes"


def matrix_markdown(tables: Iterable[Capabilities]) -> str:
    header, rows = matrix_rows(tables)
    out = [
        "# Capability matrix",
        "",
        "<!-- Generated from the installed connectors' capability tables by `lmsconnect docs`. -->",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"
