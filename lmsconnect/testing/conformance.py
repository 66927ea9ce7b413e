"""The conformance kit: one pytest class a connector's test file subclasses.

>>> # plugins/toylms/tests/test_toylms_conformance.py
>>> from lmsconnect.testing import ConformanceSuite
>>> class TestToyConformance(ConformanceSuite):
...     slug = "toylms"
...     simulator_options = {"users": 12, "courses": 5}
...     passthrough_request = ("GET", "/api/users")

Against the connector's own simulator it checks: the capability JSON is valid and round-trips; every
model the table supports yields well-typed records with stable ids and every supported field filled in
at least one record; every unsupported model and action raises `NotSupported` without an HTTP call;
invalid action input fails before any HTTP call; destructive actions are refused when the connection
forbids them; a wrong secret becomes `AuthenticationError`; secrets never appear in reprs, errors or logs;
upserts are idempotent by origin id; asynchronous actions answer `accepted`; check() reports every model.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from .. import _api
from .._actions import ACTIONS, ActionName, ItemStatus
from .._capabilities import Capabilities, Support
from .._connector import CheckStatus, Connector
from .._errors import (
    ActionFailed,
    AuthenticationError,
    DestructiveActionRefused,
    InvalidInput,
    LMSConnectError,
    NotSupported,
)
from .._models import (
    MODELS,
    CourseItem,
    CourseProgression,
    CourseRevision,
    ModelName,
    Record,
    RevisionStatus,
    User,
    UserStatus,
    make_id,
    parse_id,
)
from .._registry import registry
from . import simulator

__all__ = ["ConformanceSuite"]

# The kit marks its own async tests, so it runs in a project with no pytest configuration (pytest-asyncio's
# default strict mode) as well as in one with asyncio_mode = "auto". Its tests and fixtures name their
# (function-scoped) loop, so a project whose own asyncio_default_fixture_loop_scope is wider still runs each
# test and its simulator on one loop.
_async_test = pytest.mark.asyncio(loop_scope="function")

_NEEDS_SYNC = {"changed_at", "remote_deleted_at"}  # filled by lmsconnect.sync, not by a read
_REFERENCES: dict[str, ModelName] = {
    "user_id": "users",
    "course_id": "courses",
    "course_revision_id": "course_revisions",
    "provider_id": "course_providers",
    "skill_id": "skills",
    "parent_id": "course_items",
}
# Units the models document: percentages 0-100, seconds and minutes and positions never negative.
_RANGES: dict[str, tuple[float, float]] = {
    "progress": (0, 100),
    "score": (0, 100),
    "time_spent": (0, float("inf")),
    "duration": (0, float("inf")),
    "position": (0, float("inf")),
}
_RANGED = (CourseProgression, CourseRevision, CourseItem)

_MINIMAL: dict[ActionName, dict[str, Any]] = {
    "upsert_courses": {"items": [{"origin_id": "kit", "course": {"title": "Kit"}}]},
    "deactivate_course": {"course_id": "remote:1"},
    "enroll_user": {"user_id": "remote:1", "course_revision_id": "remote:1"},
    "complete_course": {"course_progression_id": "remote:1"},
}
_INVALID: dict[ActionName, dict[str, Any]] = {
    "upsert_courses": {"items": [{"origin_id": "kit", "course": {"title": "Kit", "duration": -1}}]},
    "deactivate_course": {"course_id": ""},
    "enroll_user": {"user_id": "remote:1"},
    "complete_course": {"course_progression_id": "remote:1", "score": 101},
}


class ConformanceSuite:
    """Subclass as ``Test<Name>Conformance`` and set `slug` (and options) to run the kit."""

    slug: ClassVar[str]
    simulator_options: ClassVar[dict[str, Any]] = {}
    connect_options: ClassVar[dict[str, Any]] = {}
    passthrough_request: ClassVar[tuple[str, str] | None] = None
    max_records: ClassVar[int] = 2000

    # -- fixtures ------------------------------------------------------------------------------------

    @pytest_asyncio.fixture(loop_scope="function")
    async def sim(self) -> AsyncIterator[Any]:
        async with simulator(self.slug, **self.simulator_options) as running:
            yield running

    @pytest_asyncio.fixture(loop_scope="function")
    async def lms(self, sim: Any) -> AsyncIterator[Connector[Any]]:
        async with _api.connect(self.slug, **sim.connect_config, **self.connect_options) as connector:
            yield connector

    @property
    def table(self) -> Capabilities:
        return registry.get(self.slug).capabilities

    def secret_values(self, sim: Any) -> list[str]:
        spec = registry.get(self.slug).spec
        secret_names = [f.name for f in spec.config_fields if f.secret]
        return [str(sim.connect_config[n]) for n in secret_names if sim.connect_config.get(n)]

    async def enroll_candidate(self, lms: Connector[Any]) -> tuple[str, str]:
        """An active user and an active revision not yet paired; override when that would not do."""
        enrolled = set()
        if lms.capabilities.models["course_progressions"].supported:
            async for p in lms.list(CourseProgression):
                enrolled.add((p.user_id, p.course_revision_id))
        revisions = [r.id async for r in lms.list(CourseRevision)
                     if r.status in (None, RevisionStatus.ACTIVE)]
        async for user in lms.list(User):
            if user.status not in (None, UserStatus.ACTIVE) or user.remote_deleted_at:
                continue
            for revision in revisions:
                if (user.id, revision) not in enrolled:
                    return user.id, revision
        pytest.skip("the simulator has no user and revision that are not already paired")

    # -- the table itself ---------------------------------------------------------------------------

    def test_capabilities_json_round_trips(self) -> None:
        """The capability JSON has every model, action and feature and round-trips exactly."""
        data = json.loads(self.table.to_json())
        assert set(data["models"]) == set(MODELS)
        assert set(data["actions"]) == set(ACTIONS)
        assert set(data["features"]) == {"passthrough", "scope_testing", "per_model_tests"}
        assert Capabilities.from_dict(data) == self.table
        assert data["slug"] == self.slug

    # -- reads --------------------------------------------------------------------------------------

    @_async_test
    @pytest.mark.parametrize("model", list(MODELS))
    async def test_model_reads_as_the_table_says(self, lms: Connector[Any], model: ModelName) -> None:
        """Supported models yield typed records with stable ids and their fields; others NotSupported."""
        cap = self.table.models[model]
        if not cap.supported:
            before = lms.stats.calls
            with pytest.raises(NotSupported):
                lms.list(model)
            assert lms.stats.calls == before
            return
        records: list[Record] = []
        async for record in lms.list(model):
            records.append(record)
            if len(records) >= self.max_records:
                break
        assert records, f"the simulator yielded no {model}; seed it so the kit can check the fields"
        ids = [r.id for r in records]
        assert len(ids) == len(set(ids)), f"duplicate ids among {model}"
        for record in records:
            assert isinstance(record, MODELS[model])
            assert isinstance(record.remote_id, str) and record.remote_id
            assert record.id == make_id(self.slug, model, record.remote_id)
            for field, target in _REFERENCES.items():
                value = getattr(record, field, None)
                if value is not None:
                    assert parse_id(value)[0] == target, f"{model}.{field} is not a {target} id"
        for field, fcap in cap.fields.items():
            if fcap.support is Support.UNSUPPORTED and field not in _NEEDS_SYNC:
                assert all(getattr(r, field) is None for r in records), (
                    f"{model}.{field} is marked unsupported but a record has it (say supported or partial)"
                )
            if fcap.support is not Support.SUPPORTED or field in _NEEDS_SYNC:
                continue
            assert any(getattr(r, field) is not None for r in records), (
                f"{model}.{field} is marked supported but no record has it"
            )
        for record in records:
            for field, (low, high) in _RANGES.items():
                value = getattr(record, field, None)
                if value is not None and isinstance(record, _RANGED):
                    assert low <= value <= high, f"{model}.{field} = {value!r} is outside {low}..{high}"

    @_async_test
    async def test_check_reports_every_supported_model(self, lms: Connector[Any]) -> None:
        """check() against the simulator's full-access credentials passes for every supported model."""
        report = await lms.check()
        if self.table.features["per_model_tests"].supported:
            for model, cap in self.table.models.items():
                if cap.supported:
                    assert report.get("model", model).status is CheckStatus.OK, report.to_dict()
        else:
            with pytest.raises(KeyError):
                report.get("model", "users")

    # -- actions ------------------------------------------------------------------------------------

    @_async_test
    @pytest.mark.parametrize("action", list(ACTIONS))
    async def test_action_gatekeeping(self, lms: Connector[Any], action: ActionName) -> None:
        """Unsupported actions raise NotSupported and invalid input InvalidInput, both before any call."""
        before = lms.stats.calls
        method = getattr(lms, action)
        if not self.table.actions[action].supported:
            with pytest.raises(NotSupported):
                await method(_MINIMAL[action])
        else:
            with pytest.raises(InvalidInput):
                await method(_INVALID[action])
        assert lms.stats.calls == before

    @_async_test
    @pytest.mark.parametrize("action", list(ACTIONS))
    async def test_destructive_actions_refused_when_forbidden(self, sim: Any, action: ActionName) -> None:
        """With allow_destructive=False an action this connection flags destructive raises before any
        call (beyond finding out the connection's table, for a connector with modes)."""
        cap = self.table.actions[action]
        if not (cap.supported and cap.destructive):
            pytest.skip(f"{action} is not flagged destructive")
        async with _api.connect(self.slug, allow_destructive=False, **sim.connect_config) as lms:
            if not self.table.modes:
                # One table for every connection: refused without a call, table read or not.
                with pytest.raises(DestructiveActionRefused):
                    await getattr(lms, action)(_MINIMAL[action])
                assert lms.stats.calls == 0
                return
            if not (await lms.resolve_capabilities()).actions[action].destructive:
                pytest.skip(f"{action} is not destructive in this connection's mode")
            before = lms.stats.calls
            with pytest.raises(DestructiveActionRefused):
                await getattr(lms, action)(_MINIMAL[action])
            assert lms.stats.calls == before

    @_async_test
    async def test_upsert_is_idempotent_by_origin_id(self, lms: Connector[Any]) -> None:
        """Upserting the same origin id twice never creates a second course."""
        if not self.table.actions["upsert_courses"].supported:
            pytest.skip("upsert_courses not supported")
        origin = f"kit-{uuid.uuid4().hex[:8]}"
        payload = {"items": [{"origin_id": origin, "course": self._course_input()}]}
        first = (await lms.upsert_courses(payload)).item(origin)
        assert first.status in (ItemStatus.CREATED, ItemStatus.ACCEPTED), first
        second = (await lms.upsert_courses(payload)).item(origin)
        assert second.status in (ItemStatus.UNCHANGED, ItemStatus.UPDATED, ItemStatus.ACCEPTED), second
        if first.id and second.id:
            assert first.id == second.id

    def _course_input(self) -> dict[str, Any]:
        fields = self.table.actions["upsert_courses"].fields
        course: dict[str, Any] = {"title": "Conformance kit course"}
        optional = {
            "description": "Made by the lmsconnect conformance kit",
            "course_url": "https://content.example/kit",
            "thumbnail_url": "https://content.example/kit.png",
            "duration": 90,
            "languages": ["en"],
        }
        for name, value in optional.items():
            if fields[f"items.course.{name}"].support is not Support.UNSUPPORTED:
                course[name] = value
        return course

    @_async_test
    async def test_enroll_user_reports_per_flags(self, lms: Connector[Any]) -> None:
        """Enrolment answers `accepted` when flagged asynchronous, created/unchanged otherwise."""
        cap = self.table.actions["enroll_user"]
        if not cap.supported:
            pytest.skip("enroll_user not supported")
        user_id, revision_id = await self.enroll_candidate(lms)
        try:
            result = await lms.enroll_user(user_id=user_id, course_revision_id=revision_id)
        except ActionFailed as exc:
            assert cap.rollback, f"enroll_user failed but is not flagged rollback: {exc}"
            return
        item = result.items[0]
        expected = {ItemStatus.ACCEPTED} if cap.asynchronous else {
            ItemStatus.CREATED, ItemStatus.UNCHANGED, ItemStatus.UPDATED}
        assert item.status in expected, item

    # -- errors and secrets -------------------------------------------------------------------------

    @_async_test
    async def test_wrong_secret_is_an_authentication_error_without_the_secret(
        self, sim: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A wrong secret becomes AuthenticationError; no secret shows in reprs, messages or logs."""
        spec = registry.get(self.slug).spec
        secret_names = [f.name for f in spec.config_fields if f.secret]
        assert secret_names, "a connector with credentials declares them secret"
        config = dict(sim.connect_config)
        for name in secret_names:
            config[name] = f"wrong-{config[name]}"
        first = next(m for m, c in self.table.models.items() if c.supported)
        caplog.set_level(logging.DEBUG)
        async with _api.connect(self.slug, **config) as lms:
            with pytest.raises(AuthenticationError) as info:
                async for _ in lms.list(first):
                    break
            shown = [repr(lms), str(info.value), repr(info.value), json.dumps(info.value.context())]
        shown += [r.getMessage() for r in caplog.records]
        for secret in self.secret_values(sim) + [str(config[n]) for n in secret_names]:
            for text in shown:
                assert secret not in text

    @_async_test
    async def test_passthrough(self, lms: Connector[Any]) -> None:
        """Passthrough reaches the vendor API with the connection's auth (or is NotSupported)."""
        if not self.table.features["passthrough"].supported:
            with pytest.raises(NotSupported):
                await lms.passthrough("GET", "/")
            return
        assert self.passthrough_request, "set passthrough_request = (METHOD, PATH) on the suite"
        method, path = self.passthrough_request
        response = await lms.passthrough(method, path)
        assert response.status < 400

    @_async_test
    async def test_errors_are_lmsconnect_errors(self, sim: Any) -> None:
        """An unreachable base is a RemoteError (an LMSConnectError), not a raw aiohttp exception."""
        config = dict(sim.connect_config)
        url_fields = [k for k, v in config.items() if isinstance(v, str) and v == sim.url]
        if not url_fields:
            pytest.skip("the connect config does not carry the simulator URL in one field")
        for name in url_fields:
            config[name] = "http://127.0.0.1:9"  # discard port: connection refused
        from .._http import HttpOptions

        first = next(m for m, c in self.table.models.items() if c.supported)
        async with _api.connect(self.slug, http=HttpOptions(max_attempts=1), **config) as lms:
            with pytest.raises(LMSConnectError):
                async for _ in lms.list(first):
                    break


