"""Discovery of connectors: entry points of the group ``lmsconnect.connectors``, plus in-code registration.

Entry points are scanned once per process and cached. Each is loaded lazily and validated
(`validate_connector_class`); one that fails becomes a `PluginLoadError` naming its entry point and
distribution, while the others still load. When two distributions offer the same slug, the one whose
distribution name sorts first wins, predictably, and the other is reported as shadowed. Connectors
registered in code take precedence over entry points.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import threading
from typing import Any, Final

import attrs

from ._connector import Connector, validate_connector_class
from ._errors import ConfigurationError, PluginLoadError

__all__ = ["ConnectorInfo", "Registry", "registry"]

GROUP: Final = "lmsconnect.connectors"


@attrs.frozen(kw_only=True)
class ConnectorInfo:
    """An installed (or registered) connector, or the reason it could not be loaded."""

    slug: str
    name: str | None
    distribution: str | None
    version: str | None
    entry_point: str | None
    error: str | None = None
    shadowed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.define
class _Entry:
    slug: str
    entry_point: importlib.metadata.EntryPoint | None
    distribution: str | None
    version: str | None
    cls: type[Connector[Any]] | None = None
    error: PluginLoadError | None = None
    shadowed: list[str] = attrs.Factory(list)


class Registry:
    def __init__(self, group: str = GROUP) -> None:
        self.group = group
        self._entries: dict[str, _Entry] | None = None
        self._manual: dict[str, type[Connector[Any]]] = {}
        self._lock = threading.Lock()

    def _scan(self) -> dict[str, _Entry]:
        with self._lock:
            if self._entries is not None:
                return self._entries
            found: dict[str, list[_Entry]] = {}
            seen: set[tuple[str, str, str | None]] = set()
            for ep in importlib.metadata.entry_points(group=self.group):
                dist = ep.dist.name if ep.dist is not None else None
                identity = (ep.name, ep.value, dist)
                if identity in seen:  # the same distribution found twice on sys.path
                    continue
                seen.add(identity)
                version = ep.dist.version if ep.dist is not None else None
                found.setdefault(ep.name, []).append(
                    _Entry(slug=ep.name, entry_point=ep, distribution=dist, version=version)
                )
            entries = {}
            for slug, candidates in found.items():
                candidates.sort(
                    key=lambda e: (e.distribution or "", str(e.entry_point and e.entry_point.value))
                )
                winner = candidates[0]
                winner.shadowed = [f"{c.distribution} ({c.entry_point.value if c.entry_point else '?'})"
                                   for c in candidates[1:]]
                entries[slug] = winner
            self._entries = entries
            return entries

    def _load(self, entry: _Entry) -> type[Connector[Any]]:
        if entry.cls is not None:
            return entry.cls
        if entry.error is not None:
            raise entry.error
        assert entry.entry_point is not None
        try:
            cls: type[Connector[Any]] = entry.entry_point.load()
            validate_connector_class(cls)
            if cls.spec.slug != entry.slug:
                raise TypeError(
                    f"entry point name {entry.slug!r} differs from the connector's slug {cls.spec.slug!r}"
                )
        except Exception as exc:
            entry.error = PluginLoadError(
                f"connector plugin {entry.slug!r} (entry point {entry.entry_point.value!r} of "
                f"distribution {entry.distribution!r}) failed to load: {type(exc).__name__}: {exc}",
                entry_point=entry.entry_point.value,
                distribution=entry.distribution,
            )
            raise entry.error from exc
        entry.cls = cls
        return cls

    def register(self, cls: type[Connector[Any]], *, replace: bool = False) -> None:
        """Register a connector in code (tests, private connectors); it wins over an entry point."""
        validate_connector_class(cls)
        slug = cls.spec.slug
        if slug in self._manual and self._manual[slug] is not cls and not replace:
            raise ConfigurationError(
                f"a connector with slug {slug!r} is already registered ({self._manual[slug].__name__}); "
                f"pass replace=True to replace it"
            )
        self._manual[slug] = cls

    def unregister(self, slug: str) -> None:
        self._manual.pop(slug, None)

    def get(self, slug: str) -> type[Connector[Any]]:
        """The connector class for `slug`; `ConfigurationError` listing what is installed otherwise."""
        if slug in self._manual:
            return self._manual[slug]
        entries = self._scan()
        if slug not in entries:
            known = self.slugs()
            close = difflib.get_close_matches(slug, known, n=1)
            # No distribution name is guessed from a mistyped slug: it could name someone else's package.
            raise ConfigurationError(
                f"no connector {slug!r} is installed",
                hint=(f"Did you mean {close[0]!r}? " if close else "")
                + f"Installed: {', '.join(known) or 'none'}"
                + ("" if close else "; another LMS needs its connector plugin installed"),
            )
        return self._load(entries[slug])

    def slugs(self) -> list[str]:
        """The slugs of every installed or registered connector, sorted, without loading any plugin."""
        return sorted(set(self._scan()) | set(self._manual))

    def infos(self) -> tuple[ConnectorInfo, ...]:
        """Every connector, loaded if possible; broken ones carry their error."""
        out: dict[str, ConnectorInfo] = {}
        for slug, entry in sorted(self._scan().items()):
            try:
                cls = self._load(entry)
                out[slug] = ConnectorInfo(
                    slug=slug, name=cls.spec.name, distribution=entry.distribution,
                    version=entry.version, entry_point=entry.entry_point.value if entry.entry_point else None,
                    shadowed=tuple(entry.shadowed),
                )
            except PluginLoadError as exc:
                out[slug] = ConnectorInfo(
                    slug=slug, name=None, distribution=entry.distribution, version=entry.version,
                    entry_point=exc.entry_point, error=str(exc), shadowed=tuple(entry.shadowed),
                )
        for slug, cls in self._manual.items():
            out[slug] = ConnectorInfo(
                slug=slug, name=cls.spec.name, distribution=None, version=None,
                entry_point=f"{cls.__module__}:{cls.__qualname__} (registered in code)",
            )
        return tuple(out[s] for s in sorted(out))

    def loaded(self) -> list[type[Connector[Any]]]:
        """The classes of every connector that loads, in slug order."""
        result = []
        for info in self.infos():
            if info.ok:
                result.append(self.get(info.slug))
        return result

    def clear_cache(self) -> None:
        with self._lock:
            self._entries = None


registry = Registry()
