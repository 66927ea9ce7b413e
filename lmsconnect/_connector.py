"""The Connector protocol, its base class, and what `check()` reports.

A plugin subclasses `Connector`, sets `spec` and `capabilities`, and implements the hooks its table
promises (``read_<model>`` async generators, ``handle_<action>`` coroutines, `create_http`, optionally
`check_access` and `on_open`). The public methods (`list`, the four actions, `passthrough`, `check`) live
here and are not overridden: they enforce the capability table, validate input before any remote call,
refuse destructive actions when the connection forbids them, and type-check what plugins return.
"""

from __future__ import annotations

import abc
import collections
import enum
import inspect
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

import attrs

from . import _telemetry as telemetry
from ._actions import (
    MAX_DURATION_MINUTES,
    MAX_ID_LENGTH,
    MAX_REMOTE_ID_LENGTH,
    ActionName,
    ActionResult,
    CompleteCourse,
    DeactivateCourse,
    EnrollUser,
    ItemStatus,
    UpsertCourses,
    action_fields,
    structure_action,
)
from ._capabilities import Capabilities, Support
from ._config import ConfigField, build_config, describe_config
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    DestructiveActionRefused,
    InvalidInput,
    LMSConnectError,
    NotSupported,
    PermissionDenied,
)
from ._http import HttpClient, HttpOptions, HttpStats, Response, SharedBudget
from ._models import (
    MODELS,
    Course,
    CourseItem,
    CourseProgression,
    CourseProvider,
    CourseRevision,
    ModelName,
    Record,
    RevisionSkill,
    Skill,
    User,
    make_id,
    model_name,
    parse_id,
)
from ._secrets import Secret

__all__ = ["CheckItem", "CheckReport", "CheckStatus", "Connector", "ConnectorSpec"]

C = TypeVar("C")
M = TypeVar(
    "M", User, CourseProvider, Course, CourseRevision, CourseProgression, Skill, RevisionSkill, CourseItem
)
A = TypeVar("A", UpsertCourses, DeactivateCourse, EnrollUser, CompleteCourse)


@attrs.frozen(kw_only=True)
class ConnectorSpec:
    """Who a connector is and what it needs to connect.

    ``config`` is an attrs class whose fields are declared with `lmsconnect.plugin.config_field`;
    ``simulator`` is ``"module:Class"`` of the plugin's offline simulator (for ``lmsconnect simulate``).
    """

    slug: str
    name: str
    config: type[Any]
    api_versions: tuple[str, ...] = ()
    simulator: str | None = None
    docs_url: str | None = None

    @property
    def config_fields(self) -> tuple[ConfigField, ...]:
        return describe_config(self.config)


class CheckStatus(str, enum.Enum):
    OK = "ok"
    MISSING_PERMISSION = "missing_permission"
    ERROR = "error"
    NOT_SUPPORTED = "not_supported"

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class CheckItem:
    """One line of a check: a model, an action or the credentials, and how it fared.

    ``permissions`` are the vendor's own names of what is missing (a Moodle web-service function, a
    360Learning scope, ...).
    """

    kind: Literal["credentials", "model", "action"]
    name: str
    status: CheckStatus
    permissions: tuple[str, ...] = ()
    detail: str = ""


@attrs.frozen(kw_only=True)
class CheckReport:
    connector: str
    items: tuple[CheckItem, ...]

    @property
    def ok(self) -> bool:
        return all(i.status in (CheckStatus.OK, CheckStatus.NOT_SUPPORTED) for i in self.items)

    def get(self, kind: str, name: str) -> CheckItem:
        for item in self.items:
            if item.kind == kind and item.name == name:
                return item
        raise KeyError((kind, name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "ok": self.ok,
            "items": [
                {
                    "kind": i.kind,
                    "name": i.name,
                    "status": i.status.value,
                    "permissions": list(i.permissions),
                    "detail": i.detail,
                }
                for i in self.items
            ],
        }


class Connector(abc.ABC, Generic[C]):
    """Base class of every connector. Use it through `lmsconnect.connect`:

    >>> async with lmsconnect.connect("moodle", base_url=..., token=...) as lms:
    ...     async for user in lms.list(lmsconnect.User):
    ...         print(user.work_email)
    """

    spec: ClassVar[ConnectorSpec]
    #: The class's table (what any connection may do). A connection whose abilities depend on the account
    #: replaces it with its own once `resolve_capabilities` has found out (so not a ClassVar).
    capabilities: Capabilities
    # The longest course duration (minutes) this vendor takes; upsert input over it is InvalidInput
    # before any call. Connectors set their own (tighter) bound; the core's is ten years.
    max_duration_minutes: ClassVar[int] = MAX_DURATION_MINUTES

    def __init__(
        self,
        config: C,
        *,
        allow_destructive: bool = True,
        http: HttpOptions | None = None,
        unsupported_fields: Literal["raise", "drop"] = "raise",
    ) -> None:
        # A truthy string ("false" from an env var) must not silently allow irreversible actions.
        if not isinstance(allow_destructive, bool):
            raise ConfigurationError(
                f"allow_destructive must be True or False, got {type(allow_destructive).__name__}",
                connector=self.spec.slug,
            )
        if http is not None and not isinstance(http, HttpOptions):
            raise ConfigurationError(
                f"http must be an lmsconnect.HttpOptions, got {type(http).__name__}", connector=self.spec.slug
            )
        if unsupported_fields not in ("raise", "drop"):
            raise ConfigurationError(
                f"unsupported_fields must be 'raise' or 'drop', got {unsupported_fields!r}",
                connector=self.spec.slug,
            )
        self.config = config
        self.allow_destructive = allow_destructive
        self.unsupported_fields = unsupported_fields
        self.http_options = http or HttpOptions()
        #: Where the rate budgets are counted: None = in this process; set by ``connect(budget=...)``.
        self.shared_budget: SharedBudget | None = None
        self._http: HttpClient | None = None

    @classmethod
    def from_config(
        cls,
        *,
        allow_destructive: bool = True,
        http: HttpOptions | None = None,
        unsupported_fields: Literal["raise", "drop"] = "raise",
        **values: Any,
    ) -> Connector[Any]:
        """Build from connect() keyword arguments, validated against ``spec.config``."""
        config = build_config(cls.spec.config, cls.spec.slug, values)
        if unsupported_fields == "raise":  # plugins that override __init__ need not know the option
            return cls(config, allow_destructive=allow_destructive, http=http)
        return cls(
            config, allow_destructive=allow_destructive, http=http, unsupported_fields=unsupported_fields
        )

    def __repr__(self) -> str:
        shown = []
        for f in self.spec.config_fields:
            value = getattr(self.config, f.name, None)
            shown.append(f"{f.name}={'***' if f.secret or isinstance(value, Secret) else repr(value)}")
        state = "open" if self._http is not None else "closed"
        return f"<{type(self).__name__} {state} {' '.join(shown)}>"

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def slug(self) -> str:
        return self.spec.slug

    @property
    def http(self) -> HttpClient:
        if self._http is None:
            raise ConfigurationError(
                f"the {self.spec.name} connector is not open; use "
                f"`async with lmsconnect.connect({self.slug!r}, ...) as lms:` (or `await lms.open()`)",
                connector=self.slug,
            )
        return self._http

    @property
    def stats(self) -> HttpStats:
        """HTTP calls made so far (retries included), retries, 429s received."""
        return self.http.stats

    def share_budget(self, shared: SharedBudget) -> None:
        """Count this connection's calls in `shared` from now on (``connect(budget=...)`` does it
        before the connection opens; `sync` does it for a store with shared budgets)."""
        self.shared_budget = shared
        if self._http is not None:
            self._http.share_budgets(shared)

    async def open(self) -> None:
        if self._http is None:
            self._http = self.create_http()
            if self.shared_budget is not None:
                self._http.share_budgets(self.shared_budget)
            try:
                await self.on_open()
            except BaseException:
                await self.aclose()
                raise

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def __aenter__(self: _Self) -> _Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- hooks for plugin authors -------------------------------------------------------------------

    @abc.abstractmethod
    def create_http(self) -> HttpClient:
        """The HTTP client: base URL, rate budgets, auth, error mapper, and the secrets to scrub."""

    async def on_open(self) -> None:
        """Called once the HTTP client exists (e.g. to calibrate a rate budget). Default: nothing."""

    async def check_access(self) -> Sequence[CheckItem]:
        """Scope testing: what the credentials may do, per model and action (reads only)."""
        return ()

    async def resolve_capabilities(self) -> Capabilities:
        """This connection's capability table; afterwards it is also ``lms.capabilities``.

        For most connectors that is the class's table, at no cost. A connector whose abilities depend on
        the account (its table lists ``modes``) overrides this to find out once per connection (a probe)
        and sets ``self.capabilities`` to its mode's table. Actions and `check` call it first, so a
        destructive action is refused by what this connection would really do.

        >>> caps = await lms.resolve_capabilities()
        >>> caps.mode, caps.actions["deactivate_course"].destructive
        """
        return self.capabilities

    async def handle_passthrough(self, method: str, path: str, **kwargs: Any) -> Response:
        """A raw vendor call with the connector's auth. Default: one request through `http`."""
        return await self.http.request(method, path, **kwargs)

    # Plugins implement, per supported model and action (named after the table keys):
    #   def read_users(self) -> AsyncIterator[User]
    #   async def handle_upsert_courses(self, action: UpsertCourses) -> ActionResult
    # and so on; `validate_connector_class` checks they match the capability table.

    # -- ids -----------------------------------------------------------------------------------------

    def make_id(self, model: ModelName, remote_id: str | int) -> str:
        return make_id(self.slug, model, remote_id)

    def remote_id(self, model: ModelName, value: str, *, field: str) -> str:
        """The vendor id behind an id given in action input: ours, or ``remote:<vendor id>``.

        Raises `InvalidInput` naming `field` when the id is not one of ours, belongs to another connector,
        or is of another model (a user id where a course id belongs).
        """
        if len(value) > MAX_ID_LENGTH:
            raise InvalidInput(
                f"{field}: an id of {len(value):,} characters; ids have at most {MAX_ID_LENGTH}", field=field
            )
        if value.startswith("remote:"):
            remote = value[len("remote:") :]
            if not remote:
                raise InvalidInput(f"{field}: 'remote:' must be followed by the vendor's id", field=field)
        else:
            parsed: tuple[ModelName, str, str] | None
            try:
                parsed = parse_id(value)
            except ValueError:
                parsed = None
            if parsed is None:
                raise InvalidInput(
                    f"{field}: {value!r} is neither an lmsconnect id nor 'remote:<vendor id>'", field=field
                )
            got_model, connector, remote = parsed
            if connector != self.slug:
                raise InvalidInput(
                    f"{field}: {value!r} is an id from the {connector!r} connector, not {self.slug!r}",
                    field=field,
                )
            if got_model != model:
                raise InvalidInput(
                    f"{field}: {value!r} is an id of {got_model}, expected one of {model}", field=field
                )
        if len(remote) > MAX_REMOTE_ID_LENGTH or not remote.isprintable():
            raise InvalidInput(
                f"{field}: the vendor id must be at most {MAX_REMOTE_ID_LENGTH} printable characters "
                f"(got {len(remote):,} characters)",
                field=field,
            )
        return remote

    # -- public API (enforces the table; not overridden) ----------------------------------------------

    @overload
    def list(self, model: type[M]) -> AsyncIterator[M]: ...
    @overload
    def list(self, model: ModelName) -> AsyncIterator[Record]: ...

    def list(self, model: Any) -> AsyncIterator[Any]:
        """Stream every record of `model` (a class such as `lmsconnect.User`, or its key ``"users"``).

        Raises `NotSupported` at once when the capability table does not list the model.
        """
        try:
            key = model_name(model)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="model") from None
        self.capabilities.require_model(key)
        self.http  # noqa: B018 - fail now, not at the first iteration, when not open
        return self._checked_stream(key)

    async def _checked_stream(self, key: ModelName) -> AsyncIterator[Record]:
        cls = MODELS[key]
        reader = getattr(self, f"read_{key}")
        stream = reader()
        try:
            async for record in stream:
                if not isinstance(record, cls):
                    raise TypeError(
                        f"{type(self).__name__}.read_{key} yielded {type(record).__name__}, "
                        f"expected {cls.__name__}"
                    )
                yield record
        finally:
            await stream.aclose()

    async def _prepare(self, name: ActionName, cls: type[A], value: Any, fields: Mapping[str, Any]) -> A:
        self.capabilities.require_action(name)
        if value is not None and fields:
            raise InvalidInput(f"{name}: pass either an input object/dict or keyword fields, not both")
        action: A = structure_action(cls, value if value is not None else dict(fields))
        action = self._enforce_table(self.capabilities, name, action)
        if isinstance(action, UpsertCourses):
            for index, item in enumerate(action.items):
                duration = item.course.duration
                if duration is not None and duration > self.max_duration_minutes:
                    where = f"items[{index}].course.duration"
                    raise InvalidInput(
                        f"invalid UpsertCourses input: {where}: {duration:,} minutes is more than "
                        f"{self.spec.name} takes ({self.max_duration_minutes:,} minutes)",
                        field=where,
                        connector=self.slug,
                    )
        if self._http is None:
            # Closed: refused by the class table (which flags what any mode may do), then "not open".
            self._refuse_destructive(self.capabilities, name)
        self.http  # noqa: B018 - not open is an error before anything else happens
        caps = await self.resolve_capabilities()
        action = self._enforce_table(caps, name, action)
        self._refuse_destructive(caps, name)
        return action

    def _enforce_table(self, caps: Capabilities, name: ActionName, action: A) -> A:
        caps.require_action(name)
        if self.unsupported_fields == "drop":
            action = _drop_unsupported(caps, name, action)  # same type, fields reset
        for path in action_fields(name):
            caps.require_action_field(name, path, given=_given(action, path))
        return action

    def _refuse_destructive(self, caps: Capabilities, name: ActionName) -> None:
        if caps.actions[name].destructive and not self.allow_destructive:
            note = caps.actions[name].note
            raise DestructiveActionRefused(
                f"{name} is destructive on {self.spec.name} and this connection was opened with "
                f"allow_destructive=False" + (f" ({note})" if note else ""),
                connector=self.slug,
            )

    async def _run(
        self, name: ActionName, cls: type[A], value: Any, fields: Mapping[str, Any]
    ) -> ActionResult:
        """Prepare (table, input, destructive refusal), run the plugin's handler, check its result and,
        with ``unsupported_fields="drop"``, say per item which input fields were ignored."""
        given = None
        if self.unsupported_fields == "drop" and self.capabilities.actions[name].supported:
            given = structure_action(cls, value if value is not None else dict(fields))
        if not telemetry.ENABLED:
            return await self._act(name, cls, value, fields, given)
        with telemetry.action_span(self.slug, name) as span:
            result = await self._act(name, cls, value, fields, given)
            counts = collections.Counter(str(item.status) for item in result.items)
            span.set_attributes({
                "lmsconnect.action.items": len(result.items),
                **{f"lmsconnect.action.{status}": count for status, count in counts.items()},
            })
            meter = telemetry.instruments().action_items
            for status, count in counts.items():
                meter.add(count, {telemetry.CONNECTOR: self.slug, telemetry.ACTION: name,
                                  telemetry.STATUS: status})
            failed = next((i.error for i in result.items if i.error is not None), None)
            if not result.ok:
                telemetry.fail(span, failed.code if failed else "ACTION.ITEM_FAILED")
            return result

    async def _act(
        self, name: ActionName, cls: type[A], value: Any, fields: Mapping[str, Any], given: Any
    ) -> ActionResult:
        action = await self._prepare(name, cls, value, fields)
        result = await self._handler(name)(action)
        if not isinstance(result, ActionResult) or result.action != name:
            raise TypeError(f"{type(self).__name__}.handle_{name} must return ActionResult({name!r})")
        return result if given is None else _report_dropped(self.capabilities, name, given, result)

    async def upsert_courses(
        self, items: UpsertCourses | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> ActionResult:
        """Create or update courses by ``origin_id``; the result says per item what happened.

        >>> await lms.upsert_courses({"items": [{"origin_id": "c-1", "course": {"title": "Intro"}}]})
        """
        return await self._run("upsert_courses", UpsertCourses, items, fields)

    async def deactivate_course(
        self, value: DeactivateCourse | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> ActionResult:
        """Stop new enrolments in a course (``course_id``); what that means per LMS is in its table."""
        return await self._run("deactivate_course", DeactivateCourse, value, fields)

    async def enroll_user(
        self, value: EnrollUser | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> ActionResult:
        """Enrol ``user_id`` in ``course_revision_id``."""
        return await self._run("enroll_user", EnrollUser, value, fields)

    async def complete_course(
        self, value: CompleteCourse | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> ActionResult:
        """Complete ``course_progression_id`` (``completed_at`` defaults to now, ``score`` 0–100)."""
        return await self._run("complete_course", CompleteCourse, value, fields)

    async def wait_until_visible(self, result: ActionResult, *, timeout_s: float = 60.0) -> ActionResult:
        """For results with `accepted` items (asynchronous actions): poll until the vendor shows the change
        or `timeout_s` passes; the returned result says per item which happened.

        Connectors with asynchronous actions override this; for the others nothing is ever `accepted`, so
        the result is returned as it is.
        """
        if any(item.status is ItemStatus.ACCEPTED for item in result.items):
            raise NotSupported(
                f"{self.spec.name} returned `accepted` items but offers no way to wait for them",
                connector=self.slug,
            )
        return result

    def _handler(self, name: ActionName) -> Any:
        return getattr(self, f"handle_{name}")

    async def passthrough(self, method: str, path: str, **kwargs: Any) -> Response:
        """A raw vendor call with this connection's auth and budgets.

        ``path`` is relative to the connection's base URL; an absolute URL is accepted only on the same
        origin (scheme, host and port), since the call carries the connection's credentials.

        >>> response = await lms.passthrough("GET", "/v1/users")
        >>> response.json()
        """
        self.capabilities.require_feature("passthrough")
        if not isinstance(method, str) or not method.isalpha():
            raise InvalidInput(f"passthrough: {method!r} is not an HTTP method", field="method")
        if not isinstance(path, str):
            raise InvalidInput(f"passthrough: the path must be a string, got {type(path).__name__}",
                               field="path")
        reason = _path_problem(path)
        if reason is None and "://" in path and not self.http.same_origin(path):
            reason = f"is not on this connection's origin {self.http.origin}"
        if reason is not None:
            raise InvalidInput(
                f"passthrough: {self.http.scrub(path.split('?')[0])[:200]!r} {reason}; give a path such as "
                "'/v1/users' (the call carries this connection's credentials, so it goes to its base URL "
                "only)",
                field="path",
                connector=self.slug,
            )
        return await self.handle_passthrough(method, path, **kwargs)

    async def check(self, *, models: bool = True) -> CheckReport:
        """Scope testing and per-model tests, reads only: per model and action, ok / missing permission
        (with the vendor's name of it) / error. Never raises for a remote failure; reports it."""
        items: list[CheckItem] = []
        auth_failed: str | None = None
        try:
            await self.resolve_capabilities()
        except LMSConnectError as exc:
            # What this connection can do stays unknown (the class table stands); check_access says more.
            items.append(CheckItem(kind="credentials", name="capabilities", status=CheckStatus.ERROR,
                                   detail=f"could not find out this connection's capabilities: {exc}"))
        if self.capabilities.features["scope_testing"].supported:
            try:
                items.extend(await self.check_access())
            except AuthenticationError as exc:
                auth_failed = str(exc)
                items.append(CheckItem(kind="credentials", name="credentials",
                                       status=CheckStatus.ERROR, detail=auth_failed))
            except LMSConnectError as exc:
                items.append(CheckItem(kind="credentials", name="scope_testing",
                                       status=CheckStatus.ERROR, detail=str(exc)))
        if models and self.capabilities.features["per_model_tests"].supported:
            for key, cap in self.capabilities.models.items():
                if not cap.supported:
                    continue
                if auth_failed:
                    items.append(CheckItem(kind="model", name=key, status=CheckStatus.ERROR,
                                           detail="not tested: authentication failed"))
                    continue
                item = await self._test_model(key)
                if item.detail.startswith("authentication failed"):
                    auth_failed = item.detail
                items.append(item)
        return CheckReport(connector=self.slug, items=_merge(items))

    async def _test_model(self, key: ModelName) -> CheckItem:
        stream = self.list(key)
        try:
            await stream.__anext__()
            detail = "read one record"
        except StopAsyncIteration:
            detail = "readable (no records)"
        except AuthenticationError as exc:
            return CheckItem(kind="model", name=key, status=CheckStatus.ERROR,
                             detail=f"authentication failed: {exc}")
        except PermissionDenied as exc:
            return CheckItem(
                kind="model", name=key, status=CheckStatus.MISSING_PERMISSION,
                permissions=(exc.permission,) if exc.permission else (), detail=str(exc),
            )
        except LMSConnectError as exc:
            return CheckItem(kind="model", name=key, status=CheckStatus.ERROR, detail=str(exc))
        finally:
            failed = await _closed(stream)
        if failed is not None:
            # Closing the read early (a prefetched page, a cleanup call) failed remotely: still a report.
            return CheckItem(kind="model", name=key, status=CheckStatus.ERROR, detail=str(failed))
        return CheckItem(kind="model", name=key, status=CheckStatus.OK, detail=detail)


_Self = TypeVar("_Self", bound=Connector[Any])


async def _closed(stream: Any) -> LMSConnectError | None:
    """Close a record stream; a remote failure while closing is returned, not raised."""
    try:
        await stream.aclose()
    except LMSConnectError as exc:
        return exc
    return None


def _path_problem(path: str) -> str | None:
    """Why `path` cannot be a passthrough path (None when it can): it must be a path, or an absolute
    http(s) URL (whose origin the caller checks)."""
    if path.startswith(("http://", "https://")):
        return None
    if path.startswith("//") or "://" in path:
        return "is a URL of another origin or scheme"
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "contains a control character or a backslash"
    if ":" in path.split("/", 1)[0] and not path.startswith("/"):
        return "looks like a URL with a scheme, not a path"
    return None


_SEVERITY = [CheckStatus.OK, CheckStatus.NOT_SUPPORTED, CheckStatus.MISSING_PERMISSION, CheckStatus.ERROR]


def _merge(items: Sequence[CheckItem]) -> tuple[CheckItem, ...]:
    """One line per (kind, name): the scope test and the read test of a model are combined, worst
    status first, permissions united."""
    merged: dict[tuple[str, str], CheckItem] = {}
    for item in items:
        key = (item.kind, item.name)
        if key not in merged:
            merged[key] = item
            continue
        old = merged[key]
        status = max(old.status, item.status, key=_SEVERITY.index)
        merged[key] = CheckItem(
            kind=item.kind,
            name=item.name,
            status=status,
            permissions=tuple(dict.fromkeys(old.permissions + item.permissions)),
            detail="; ".join(d for d in (old.detail, item.detail) if d),
        )
    return tuple(merged.values())


def _given(action: Any, path: str) -> bool:
    """Whether the action input sets the field at a coverage-table path (``items.course.title``)."""
    head, _, rest = path.partition(".")
    value = getattr(action, head)
    if isinstance(value, tuple) and rest:
        return any(_given(v, rest) for v in value)
    if rest:
        return _given(value, rest)
    # A default (``course.type`` is EXTERNAL unless said otherwise) is not something the caller set.
    field = attrs.fields_dict(type(action)).get(head)
    default = field.default if field is not None else None
    return value is not None and value != default


def _unsupported_given(caps: Capabilities, name: ActionName, action: Any) -> list[str]:
    """Coverage-table paths the input sets although the table marks them unsupported."""
    return [
        path for path in action_fields(name)
        if caps.actions[name].field(path).support is Support.UNSUPPORTED and _given(action, path)
    ]


def _reset(obj: Any, names: Sequence[str]) -> Any:
    defaults = attrs.fields_dict(type(obj))
    return attrs.evolve(obj, **{n: defaults[n].default for n in names})


def _drop_unsupported(caps: Capabilities, name: ActionName, action: Any) -> Any:
    """The input with every field the table marks unsupported reset to its default."""
    paths = _unsupported_given(caps, name, action)
    if not paths:
        return action
    if isinstance(action, UpsertCourses):
        course_fields = [p.rsplit(".", 1)[1] for p in paths if p.startswith("items.course.")]
        items = tuple(
            attrs.evolve(item, course=_reset(item.course, course_fields)) for item in action.items
        )
        return attrs.evolve(action, items=items)
    return _reset(action, paths)


def _report_dropped(caps: Capabilities, name: ActionName, given: Any, result: ActionResult) -> ActionResult:
    """Say, on each item, which input fields were ignored because the table marks them unsupported:
    with ``unsupported_fields="drop"`` nothing is dropped silently."""
    per_key: dict[str | None, list[str]]
    if isinstance(given, UpsertCourses):
        per_key = {
            item.origin_id: _unsupported_given(caps, name, attrs.evolve(given, items=(item,)))
            for item in given.items
        }
    else:
        per_key = {None: _unsupported_given(caps, name, given)}
    items = []
    for item in result.items:
        dropped = per_key.get(item.key, per_key.get(None, []))
        if dropped:
            note = f"ignored (unsupported by {caps.name}): {', '.join(dropped)}"
            item = attrs.evolve(item, detail=f"{item.detail}; {note}" if item.detail else note)
        items.append(item)
    return attrs.evolve(result, items=tuple(items))


def validate_connector_class(cls: Any) -> None:
    """Raise TypeError saying what is wrong when `cls` does not honour the connector contract."""
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"{cls!r} is not a subclass of lmsconnect.plugin.Connector")
    spec = getattr(cls, "spec", None)
    caps = getattr(cls, "capabilities", None)
    if not isinstance(spec, ConnectorSpec):
        raise TypeError(f"{cls.__name__}.spec must be a ConnectorSpec")
    if not isinstance(caps, Capabilities):
        raise TypeError(f"{cls.__name__}.capabilities must be a Capabilities table")
    if caps.slug != spec.slug:
        raise TypeError(f"{cls.__name__}: capabilities.slug {caps.slug!r} != spec.slug {spec.slug!r}")
    if not attrs.has(spec.config):
        raise TypeError(f"{cls.__name__}: spec.config must be an attrs class")
    problems = []
    for key, cap in caps.models.items():
        reader = getattr(cls, f"read_{key}", None)
        if cap.supported and not callable(reader):
            problems.append(f"the table supports model {key!r} but there is no read_{key}()")
        elif cap.supported and inspect.iscoroutinefunction(reader):
            # `async def` without `yield` returns one awaitable, not a stream of records.
            problems.append(
                f"read_{key}() must be an async generator (async def with yield), not a coroutine"
            )
    for akey, acap in caps.actions.items():
        if acap.supported and not callable(getattr(cls, f"handle_{akey}", None)):
            problems.append(f"the table supports action {akey!r} but there is no handle_{akey}()")
    if problems:
        raise TypeError(f"{cls.__name__}: " + "; ".join(problems))
