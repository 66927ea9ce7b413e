"""The four actions: typed inputs (attrs or dicts), validation before any HTTP call, per-item results.

A small in-test connector supports all four actions; each handler makes one HTTP call to a loopback
server, so a request counted there means the input got past validation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest

import lmsconnect
from lmsconnect import (
    ActionResult,
    CompleteCourse,
    CourseInput,
    CourseType,
    DeactivateCourse,
    EnrollUser,
    InvalidInput,
    ItemError,
    ItemResult,
    ItemStatus,
    UpsertCourseItem,
    UpsertCourses,
    User,
)
from lmsconnect._actions import MAX_DURATION_MINUTES, structure_action
from lmsconnect.plugin import (
    Capabilities,
    Connector,
    ConnectorSpec,
    HttpClient,
    Secret,
    action_support,
    config_field,
    make_id,
    model_support,
)

SLUG = "actionprobe"
UPSERT_FIELDS = tuple(f"items.course.{a.name}" for a in attrs.fields(CourseInput))


@attrs.frozen(kw_only=True)
class ProbeConfig:
    base_url: str = config_field(help="Loopback server")
    token: Secret = config_field(help="Token", secret=True)


class ActionProbe(Connector[ProbeConfig]):
    """Supports every action and field; each handler posts what it received to the server."""

    spec = ConnectorSpec(slug=SLUG, name="Action Probe", config=ProbeConfig)
    capabilities = Capabilities.build(
        slug=SLUG,
        name="Action Probe",
        models={"users": model_support("first_name")},
        actions={
            "upsert_courses": action_support("items.origin_id", *UPSERT_FIELDS),
            "deactivate_course": action_support("course_id"),
            "enroll_user": action_support("user_id", "course_revision_id"),
            "complete_course": action_support("course_progression_id", "completed_at", "score"),
        },
        features={},
    )
    received: list[Any]

    def create_http(self) -> HttpClient:
        self.received = []
        return HttpClient(slug=SLUG, base_url=self.config.base_url, secrets=[self.config.token.reveal()])

    async def read_users(self) -> AsyncIterator[User]:
        yield User(id=self.make_id("users", 1), remote_id="1", first_name="Ada")

    async def _send(self, name: str, action: Any, key: str, remote: str) -> ActionResult:
        self.received.append(action)
        await self.http.request("POST", f"/{name}")
        model = {"upsert_courses": "courses", "deactivate_course": "courses"}.get(name, "course_progressions")
        return ActionResult(
            action=name,  # type: ignore[arg-type]
            items=(ItemResult(key=key, status=ItemStatus.UPDATED, remote_id=remote,
                              id=self.make_id(model, remote)),),  # type: ignore[arg-type]
        )

    async def handle_upsert_courses(self, action: UpsertCourses) -> ActionResult:
        self.received.append(action)
        await self.http.request("POST", "/upsert_courses")
        return ActionResult(
            action="upsert_courses",
            items=tuple(
                ItemResult(key=i.origin_id, status=ItemStatus.CREATED, remote_id=str(n),
                           id=self.make_id("courses", n))
                for n, i in enumerate(action.items, start=1)
            ),
        )

    async def handle_deactivate_course(self, action: DeactivateCourse) -> ActionResult:
        course = self.remote_id("courses", action.course_id, field="course_id")
        return await self._send("deactivate_course", action, action.course_id, course)

    async def handle_enroll_user(self, action: EnrollUser) -> ActionResult:
        user = self.remote_id("users", action.user_id, field="user_id")
        revision = self.remote_id("course_revisions", action.course_revision_id, field="course_revision_id")
        return await self._send("enroll_user", action, action.user_id, f"{revision}:{user}")

    async def handle_complete_course(self, action: CompleteCourse) -> ActionResult:
        progression = self.remote_id(
            "course_progressions", action.course_progression_id, field="course_progression_id"
        )
        return await self._send("complete_course", action, action.course_progression_id, progression)


@attrs.define
class Probe:
    lms: ActionProbe
    hits: list[str]


@pytest.fixture
async def probe(recorder: Any) -> AsyncIterator[Probe]:
    """The probe connector, open, against a loopback server that counts requests."""
    lms = ActionProbe(ProbeConfig(base_url=recorder.url, token=Secret("probe-token-1234")))
    async with lms:
        yield Probe(lms=lms, hits=recorder.paths)


def ours(model: str, remote: str | int) -> str:
    return make_id(SLUG, model, remote)  # type: ignore[arg-type]


def course(**fields: Any) -> dict[str, Any]:
    return {"items": [{"origin_id": "c-1", "course": {"title": "Intro", **fields}}]}


# (action, invalid dict input, the field the error must name)
INVALID_DICTS: list[tuple[str, dict[str, Any], str]] = [
    ("upsert_courses", {}, "items"),
    ("upsert_courses", {"items": []}, "items"),
    ("upsert_courses", {"items": "c-1"}, "items[0]"),
    ("upsert_courses", {"items": [5]}, "items[0]"),
    ("upsert_courses", {"items": [{"course": {"title": "Intro"}}]}, "items[0].origin_id"),
    ("upsert_courses", {"items": [{"origin_id": " ", "course": {"title": "x"}}]}, "items[0].origin_id"),
    ("upsert_courses", {"items": [{"origin_id": "c-1"}]}, "items[0].course"),
    ("upsert_courses", course(title=""), "items[0].course.title"),
    ("upsert_courses", course(title=None), "items[0].course.title"),
    ("upsert_courses", course(duration=-1), "items[0].course.duration"),
    ("upsert_courses", course(duration="90"), "items[0].course.duration"),
    ("upsert_courses", course(duration=1.5), "items[0].course.duration"),
    ("upsert_courses", course(languages=["english"]), "items[0].course.languages"),
    ("upsert_courses", course(languages=[1]), "items[0].course.languages"),
    ("upsert_courses", course(course_url="not a url"), "items[0].course.course_url"),
    ("upsert_courses", course(thumbnail_url="ftp://x/y.png"), "items[0].course.thumbnail_url"),
    ("upsert_courses", course(type="INTERNAL"), "items[0].course.type"),
    ("upsert_courses", course(description=42), "items[0].course.description"),
    ("upsert_courses", course(colour="red"), "items[0].course.colour"),
    (
        "upsert_courses",
        {"items": [{"origin_id": "c-1", "course": {"title": "A"}},
                   {"origin_id": "c-1", "course": {"title": "B"}}]},
        "items",
    ),
    ("deactivate_course", {}, "course_id"),
    ("deactivate_course", {"course_id": ""}, "course_id"),
    ("deactivate_course", {"course_id": 7}, "course_id"),
    ("deactivate_course", {"course_id": "remote:"}, "course_id"),
    ("deactivate_course", {"course_id": "42"}, "course_id"),
    ("deactivate_course", {"course_id": ours("users", 7)}, "course_id"),
    ("deactivate_course", {"course_id": make_id("otherlms", "courses", 7)}, "course_id"),
    ("enroll_user", {"user_id": ours("users", 1)}, "course_revision_id"),
    ("enroll_user", {"course_revision_id": ours("course_revisions", 1)}, "user_id"),
    ("enroll_user", {"user_id": ours("courses", 1), "course_revision_id": ours("course_revisions", 1)},
     "user_id"),
    ("enroll_user", {"user_id": ours("users", 1), "course_revision_id": ours("courses", 1)},
     "course_revision_id"),
    ("enroll_user", {"user_id": ours("users", 1), "course_revision_id": ours("course_revisions", 1),
                     "role": "teacher"}, "role"),
    ("complete_course", {"score": 50}, "course_progression_id"),
    ("complete_course", {"course_progression_id": "remote:1", "score": 101}, "score"),
    ("complete_course", {"course_progression_id": "remote:1", "score": -1}, "score"),
    ("complete_course", {"course_progression_id": "remote:1", "score": True}, "score"),
    ("complete_course", {"course_progression_id": "remote:1", "score": "80"}, "score"),
    ("complete_course", {"course_progression_id": "remote:1", "completed_at": "yesterday"}, "completed_at"),
    ("complete_course", {"course_progression_id": ours("users", 1)}, "course_progression_id"),
    # Values no LMS can take (NUL, lone surrogates, huge ids and durations, out-of-range dates).
    ("upsert_courses", course(title="Intro \udc80"), "items[0].course.title"),
    ("upsert_courses", course(title="Intro\x00DROP"), "items[0].course.title"),
    ("upsert_courses", course(description="half an emoji \ud83d"), "items[0].course.description"),
    ("upsert_courses", {"items": [{"origin_id": "c\x00-1", "course": {"title": "x"}}]}, "items[0].origin_id"),
    ("upsert_courses", course(duration=10**30), "items[0].course.duration"),
    ("upsert_courses", {"items": [{"origin_id": "c" * 600, "course": {"title": "x"}}]}, "items[0].origin_id"),
    ("deactivate_course", {"course_id": "remote:" + "9" * 100_000}, "course_id"),
    ("deactivate_course", {"course_id": "remote:12\x00"}, "course_id"),
    ("enroll_user", {"user_id": "remote:\udcff", "course_revision_id": "remote:1"}, "user_id"),
    ("complete_course", {"course_progression_id": "remote:1", "completed_at": "1969-12-31T23:59:59Z"},
     "completed_at"),
    ("complete_course", {"course_progression_id": "remote:1", "completed_at": "0001-01-01T00:00:00+05:00"},
     "completed_at"),
    ("complete_course", {"course_progression_id": "remote:1", "completed_at": "9999-12-31T23:00:00-05:00"},
     "completed_at"),
    ("complete_course", {"course_progression_id": "remote:1", "completed_at": "2100-01-01T00:00:00Z"},
     "completed_at"),
]


INVALID_DICT_IDS = [
    "no-items",
    "empty-items",
    "items-a-string",
    "item-a-number",
    "origin-missing",
    "origin-blank",
    "course-missing",
    "title-empty",
    "title-null",
    "duration-negative",
    "duration-string",
    "duration-fraction",
    "language-not-bcp47",
    "language-number",
    "course-url-not-url",
    "thumbnail-ftp",
    "type-internal",
    "description-number",
    "unknown-course-key",
    "duplicate-origin",
    "course-id-missing",
    "course-id-empty",
    "course-id-number",
    "remote-prefix-alone",
    "bare-vendor-id",
    "user-id-for-course",
    "other-connector-id",
    "revision-missing",
    "user-missing",
    "course-id-for-user",
    "course-id-for-revision",
    "unknown-key-role",
    "progression-missing",
    "score-101",
    "score-negative",
    "score-bool",
    "score-string",
    "completed-at-garbage",
    "user-id-for-progression",
    "title-lone-surrogate",
    "title-nul",
    "description-half-emoji",
    "origin-id-nul",
    "duration-1e30",
    "origin-id-600-chars",
    "remote-id-100k-digits",
    "remote-id-nul",
    "user-id-lone-surrogate",
    "completed-before-1970",
    "completed-year-1-overflow",
    "completed-year-9999-overflow",
    "completed-2100",
]


class TestInvalidDictInput:
    @pytest.mark.parametrize(
        ("action", "value", "field"), INVALID_DICTS, ids=INVALID_DICT_IDS
    )
    async def test_rejected_before_any_call_naming_the_field(
        self, probe: Probe, action: str, value: dict[str, Any], field: str
    ) -> None:
        """Invalid dict input raises InvalidInput naming the field, and nothing reaches the server."""
        with pytest.raises(InvalidInput) as caught:
            await getattr(probe.lms, action)(value)
        assert caught.value.field == field
        assert field in str(caught.value)
        assert caught.value.code == "INPUT.INVALID"
        assert len(str(caught.value)) < 1000  # a 100,000-digit id is not quoted back
        assert probe.hits == []
        assert probe.lms.stats.calls == 0


# (action, a builder of attrs input, the field the error must name). Construction rejects what the
# attrs validators see; what they cannot see is rejected by the connector before any call.
INVALID_ATTRS: list[tuple[str, Callable[[], Any], str]] = [
    ("upsert_courses", lambda: UpsertCourses(items=()), "items"),
    ("upsert_courses", lambda: UpsertCourses(items=({"origin_id": "c-1"},)), "items"),  # type: ignore[arg-type]
    ("upsert_courses", lambda: UpsertCourseItem(origin_id="", course=CourseInput(title="x")), "origin_id"),
    ("upsert_courses", lambda: CourseInput(title=" "), "title"),
    ("upsert_courses", lambda: CourseInput(title="x", duration=-5), "duration"),
    ("upsert_courses", lambda: CourseInput(title="x", languages=("English",)), "languages"),
    ("upsert_courses", lambda: CourseInput(title="x", course_url="www.example.org"), "course_url"),
    (
        "upsert_courses",
        lambda: UpsertCourses(
            items=(UpsertCourseItem(origin_id="c-1", course=CourseInput(title="x", description=42)),)  # type: ignore[arg-type]
        ),
        "items[0].course.description",
    ),
    (
        "upsert_courses",
        lambda: UpsertCourses(
            items=(UpsertCourseItem(origin_id="c-1", course=CourseInput(title="x", duration=True)),)
        ),
        "items[0].course.duration",
    ),
    ("deactivate_course", lambda: DeactivateCourse(course_id=""), "course_id"),
    ("deactivate_course", lambda: DeactivateCourse(course_id=42), "course_id"),  # type: ignore[arg-type]
    ("deactivate_course", lambda: DeactivateCourse(course_id=ours("course_revisions", 4)), "course_id"),
    ("enroll_user", lambda: EnrollUser(user_id="", course_revision_id="remote:1"), "user_id"),
    ("enroll_user", lambda: EnrollUser(user_id=ours("users", 1), course_revision_id=ours("courses", 1)),
     "course_revision_id"),
    ("enroll_user", lambda: EnrollUser(user_id="not-an-id", course_revision_id="remote:1"), "user_id"),
    ("complete_course", lambda: CompleteCourse(course_progression_id="remote:1", score=101), "score"),
    ("complete_course", lambda: CompleteCourse(course_progression_id="remote:1", score=True), "score"),
    (
        "complete_course",
        lambda: CompleteCourse(course_progression_id="remote:1", completed_at=dt.datetime(2024, 5, 1)),
        "completed_at",
    ),
    (
        "complete_course",
        lambda: CompleteCourse(course_progression_id="remote:1", completed_at="2024-05-01"),  # type: ignore[arg-type]
        "completed_at",
    ),
]


class TestInvalidAttrsInput:
    @pytest.mark.parametrize(
        ("action", "build", "field"),
        INVALID_ATTRS,
        ids=[f"{a}-{f}-{n}" for n, (a, _, f) in enumerate(INVALID_ATTRS)],  # stable: index, not hash
    )
    async def test_rejected_before_any_call_naming_the_field(
        self, probe: Probe, action: str, build: Callable[[], Any], field: str
    ) -> None:
        """Invalid attrs input fails at construction or in the connector, naming the field, with no call."""
        try:
            value = build()
        except (TypeError, ValueError) as exc:
            assert field in str(exc)
        else:
            with pytest.raises(InvalidInput) as caught:
                await getattr(probe.lms, action)(value)
            assert caught.value.field == field
            assert field in str(caught.value)
        assert probe.hits == []


class TestValidInput:
    async def test_dict_and_attrs_inputs_are_the_same_action(self, probe: Probe) -> None:
        """A dict and the equivalent attrs object reach the connector as the same typed action."""
        as_dict = {
            "items": [
                {
                    "origin_id": "c-1",
                    "course": {"title": "Intro", "type": "EXTERNAL", "description": "About",
                               "course_url": "https://content.example/c-1", "duration": 90,
                               "languages": ["en", "de-CH"]},
                }
            ]
        }
        as_attrs = UpsertCourses(items=(UpsertCourseItem(origin_id="c-1", course=CourseInput(
            title="Intro", type=CourseType.EXTERNAL, description="About",
            course_url="https://content.example/c-1", duration=90, languages=("en", "de-CH"))),))
        await probe.lms.upsert_courses(as_dict)
        await probe.lms.upsert_courses(as_attrs)
        first, second = probe.lms.received
        assert first == second == as_attrs
        assert probe.hits == ["/upsert_courses"] * 2

    async def test_keyword_fields_are_accepted(self, probe: Probe) -> None:
        """Actions also take their fields as keyword arguments."""
        result = await probe.lms.enroll_user(
            user_id=ours("users", 3), course_revision_id=ours("course_revisions", 9)
        )
        assert probe.lms.received == [
            EnrollUser(user_id=ours("users", 3), course_revision_id=ours("course_revisions", 9))
        ]
        assert result.items[0].remote_id == "9:3"

    async def test_input_and_keywords_together_are_refused(self, probe: Probe) -> None:
        """Passing an input object and keyword fields at once is ambiguous and refused."""
        with pytest.raises(InvalidInput, match="not both"):
            await probe.lms.deactivate_course({"course_id": "remote:1"}, course_id="remote:2")
        assert probe.hits == []

    @pytest.mark.parametrize("value", [["remote:1"], "remote:1", 42], ids=["list", "str", "int"])
    async def test_input_of_the_wrong_kind_is_refused(self, probe: Probe, value: Any) -> None:
        """Input that is neither the attrs class nor a dict says what it must be."""
        with pytest.raises(InvalidInput, match="DeactivateCourse or a dict"):
            await probe.lms.deactivate_course(value)
        assert probe.hits == []

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)),
            ("2024-05-01T12:00:00+02:00", dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc)),
            ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)),
            (None, None),
        ],
        ids=["zulu", "offset", "date-only", "omitted"],
    )
    async def test_completed_at_is_parsed_to_utc(
        self, probe: Probe, given: str | None, expected: dt.datetime | None
    ) -> None:
        """completed_at accepts ISO 8601 (Z, offsets, a bare date) and arrives as an aware UTC datetime."""
        value: dict[str, Any] = {"course_progression_id": "remote:5", "score": 0}
        if given is not None:
            value["completed_at"] = given
        await probe.lms.complete_course(value)
        (action,) = probe.lms.received
        assert action.completed_at == expected
        assert action.score == 0

    async def test_a_single_language_string_is_a_list_of_one(self, probe: Probe) -> None:
        """languages given as one string is taken as a list of that one language."""
        await probe.lms.upsert_courses(course(languages="fr"))
        assert probe.lms.received[0].items[0].course.languages == ("fr",)

    async def test_remote_ids_are_accepted(self, probe: Probe) -> None:
        """'remote:<vendor id>' is accepted wherever one of our ids is."""
        result = await probe.lms.deactivate_course(course_id="remote:abc-123")
        assert result.items[0].remote_id == "abc-123"
        assert result.ids == (ours("courses", "abc-123"),)

    def test_action_inputs_are_frozen_and_keyword_only(self) -> None:
        """Action inputs are immutable and built with keyword arguments only."""
        action = EnrollUser(user_id="remote:1", course_revision_id="remote:2")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            action.user_id = "remote:3"  # type: ignore[misc]
        with pytest.raises(TypeError):
            EnrollUser("remote:1", "remote:2")  # type: ignore[misc]


class TestActionResult:
    RESULT = ActionResult(
        action="upsert_courses",
        items=(
            ItemResult(key="a", status=ItemStatus.CREATED, id="crs_1", remote_id="1"),
            ItemResult(key="b", status=ItemStatus.ACCEPTED),
            ItemResult(key="c", status=ItemStatus.FAILED, id="crs_3", remote_id="3",
                       error=ItemError(code="LMS.COURSE_UPDATE_NOT_SUPPORTED", message="cannot edit")),
        ),
    )

    def test_ok_only_when_no_item_failed(self) -> None:
        """A result is ok only if no item failed; each item says so too."""
        assert not self.RESULT.ok
        assert [i.ok for i in self.RESULT.items] == [True, True, False]
        assert ActionResult(action="enroll_user", items=self.RESULT.items[:2]).ok

    def test_ids_are_those_created_or_touched(self) -> None:
        """ids lists the unified ids present on the items, in order."""
        assert self.RESULT.ids == ("crs_1", "crs_3")

    def test_item_by_key(self) -> None:
        """item(key) finds an item by origin id / input id, KeyError otherwise."""
        assert self.RESULT.item("c").error == ItemError(
            code="LMS.COURSE_UPDATE_NOT_SUPPORTED", message="cannot edit"
        )
        with pytest.raises(KeyError):
            self.RESULT.item("zz")

    def test_to_dict(self) -> None:
        """to_dict is plain JSON data with statuses as strings and errors as objects."""
        data = self.RESULT.to_dict()
        assert data["action"] == "upsert_courses"
        assert data["ok"] is False
        assert [i["status"] for i in data["items"]] == ["created", "accepted", "failed"]
        assert data["items"][2]["error"] == {
            "code": "LMS.COURSE_UPDATE_NOT_SUPPORTED", "message": "cannot edit"}
        assert data["items"][1]["id"] is None

    @pytest.mark.parametrize("status", list(ItemStatus), ids=str)
    def test_item_statuses(self, status: ItemStatus) -> None:
        """Item statuses are the five documented strings."""
        assert str(status) in {"created", "updated", "unchanged", "accepted", "failed"}


class TestPublicActionTypes:
    def test_action_types_are_exported(self) -> None:
        """Every action input and result type is importable from lmsconnect."""
        for name in ("UpsertCourses", "UpsertCourseItem", "CourseInput", "DeactivateCourse", "EnrollUser",
                     "CompleteCourse", "ActionResult", "ItemResult", "ItemStatus", "ItemError"):
            assert hasattr(lmsconnect, name)


class TestActionResultOne:
    def test_one_builds_a_single_item_result(self) -> None:
        """ActionResult.one(...) equals the hand-built one-item result, every field passed through."""
        built = ActionResult.one(
            "deactivate_course", key="crs_1", status=ItemStatus.UPDATED, id="crs_1", remote_id="7",
            detail="hidden")
        assert built == ActionResult(action="deactivate_course", items=(ItemResult(
            key="crs_1", status=ItemStatus.UPDATED, id="crs_1", remote_id="7", detail="hidden"),))
        assert built.ok
        assert built.ids == ("crs_1",)

    def test_one_defaults_and_failed_item(self) -> None:
        """Optional fields default like ItemResult's; a failed item makes the result not ok."""
        bare = ActionResult.one("enroll_user", key="u:c", status=ItemStatus.ACCEPTED)
        assert bare.items == (ItemResult(key="u:c", status=ItemStatus.ACCEPTED),)
        error = ItemError(code="LMS.X", message="no")
        failed = ActionResult.one("complete_course", key="k", status=ItemStatus.FAILED, error=error)
        assert not failed.ok
        assert failed.item("k").error == error
        assert failed.ids == ()


class TestUnsendableInput:
    async def test_out_of_range_date_in_an_attrs_input(self, probe: Probe) -> None:
        """A datetime that overflows in UTC (year 1 at +05:00) is InvalidInput, not OverflowError."""
        early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
        with pytest.raises(InvalidInput) as caught:
            await probe.lms.complete_course(
                CompleteCourse(course_progression_id="remote:1", completed_at=early)
            )
        assert caught.value.field == "completed_at"
        assert probe.hits == []

    @pytest.mark.parametrize(
        "value",
        [course(title="Café ☕ 𝄞"), course(duration=MAX_DURATION_MINUTES)],
        ids=["astral-characters", "duration-at-the-bound"],
    )
    async def test_valid_edge_values_pass(self, probe: Probe, value: dict[str, Any]) -> None:
        """Whole astral characters and a duration at the core bound are accepted."""
        assert (await probe.lms.upsert_courses(value)).ok

    async def test_a_connector_declares_a_tighter_duration_bound(self, probe: Probe) -> None:
        """A connector's max_duration_minutes refuses a longer duration before any call, naming the item."""
        probe.lms.max_duration_minutes = 1_440  # type: ignore[misc]
        with pytest.raises(InvalidInput) as caught:
            await probe.lms.upsert_courses(
                {"items": [{"origin_id": "a", "course": {"title": "A", "duration": 60}},
                           {"origin_id": "b", "course": {"title": "B", "duration": 1_441}}]}
            )
        assert caught.value.field == "items[1].course.duration"
        assert "1,440 minutes" in str(caught.value)
        assert probe.hits == []

    def test_validation_errors_keep_no_context(self) -> None:
        """The converter's own exception (which quotes the input) is not chained to InvalidInput."""
        with pytest.raises(InvalidInput) as caught:
            structure_action(CompleteCourse, {"course_progression_id": "remote:1", "score": "s3cret-ish"})
        assert caught.value.__context__ is None and caught.value.__cause__ is None
