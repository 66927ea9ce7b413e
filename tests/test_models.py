"""The unified models: fields named as in the coverage tables, stable reversible ids, lenient enums."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from lmsconnect import (
    Course,
    CourseProgression,
    CourseProvider,
    CourseRevision,
    CourseType,
    ProgressionStatus,
    RevisionSkill,
    RevisionStatus,
    Skill,
    User,
    UserStatus,
)
from lmsconnect.plugin import make_id, parse_id

# The union of the unified fields in the TalentLMS, Moodle and 360Learning coverage tables.
COVERAGE: dict[type[Any], set[str]] = {
    User: {"id", "remote_id", "changed_at", "remote_deleted_at", "first_name", "last_name", "work_email",
           "status", "remote_created_at", "remote_data"},
    CourseProvider: {"id", "remote_id", "changed_at", "remote_deleted_at", "name", "remote_data"},
    Course: {"id", "remote_id", "changed_at", "remote_deleted_at", "provider_id", "remote_created_at",
             "remote_data"},
    CourseRevision: {"id", "remote_id", "changed_at", "remote_deleted_at", "course_id", "title",
                     "description", "remote_url", "status", "remote_created_at", "remote_data"},
    CourseProgression: {"id", "remote_id", "changed_at", "remote_deleted_at", "user_id", "course_revision_id",
                        "status", "enrolled_at", "completed_at", "remote_data"},
    Skill: {"id", "remote_id", "changed_at", "remote_deleted_at", "name", "remote_created_at", "remote_data"},
    RevisionSkill: {"id", "changed_at", "remote_deleted_at", "course_revision_id", "skill_id"},
}
MODEL_KEYS = {
    User: "users",
    CourseProvider: "course_providers",
    Course: "courses",
    CourseRevision: "course_revisions",
    CourseProgression: "course_progressions",
    Skill: "skills",
    RevisionSkill: "revision_skills",
}
UTC = dt.timezone.utc


class TestModels:
    @pytest.mark.parametrize("model", list(COVERAGE), ids=lambda m: m.__name__)
    def test_every_coverage_table_field_exists(self, model: type[Any]) -> None:
        """Each model has every field the vendor coverage tables list, under the same name."""
        assert COVERAGE[model] <= {a.name for a in attrs.fields(model)}

    @pytest.mark.parametrize("model", list(COVERAGE), ids=lambda m: m.__name__)
    def test_model_key(self, model: type[Any]) -> None:
        """Each model class knows its table key."""
        assert model.model == MODEL_KEYS[model]

    @pytest.mark.parametrize("model", list(COVERAGE), ids=lambda m: m.__name__)
    def test_frozen_and_keyword_only(self, model: type[Any]) -> None:
        """Records are immutable and built with keyword arguments only."""
        record = model(id="x", remote_id="1")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            record.remote_id = "2"
        with pytest.raises(TypeError):
            model("x", "1")

    def test_datetimes_must_be_timezone_aware(self) -> None:
        """A naive datetime is refused, naming the field; aware ones are kept."""
        with pytest.raises(TypeError, match="remote_created_at must be a timezone-aware"):
            User(id="x", remote_id="1", remote_created_at=dt.datetime(2024, 1, 1))
        when = dt.datetime(2024, 1, 1, tzinfo=UTC)
        assert CourseProgression(id="x", remote_id="1", completed_at=when).completed_at == when

    def test_remote_data_does_not_affect_equality(self) -> None:
        """Two reads of the same record compare equal even if the raw payload differs (e.g. a timestamp)."""
        a = User(id="x", remote_id="1", first_name="Ada", remote_data={"/users": {"seen": 1}})
        b = User(id="x", remote_id="1", first_name="Ada", remote_data={"/users": {"seen": 2}})
        assert a == b
        assert "remote_data" not in repr(a)


class TestIds:
    @pytest.mark.parametrize(
        "remote_id",
        [42, "42", "a:b:c", "üñî©ødé", "with spaces and / slashes", "x" * 200, "0"],
        ids=["int", "str", "composite", "unicode", "spaces", "long", "zero"],
    )
    def test_deterministic_and_reversible(self, remote_id: str | int) -> None:
        """The same record always gets the same id, and the id gives back connector, model and remote id."""
        first = make_id("moodle", "users", remote_id)
        assert first == make_id("moodle", "users", remote_id)
        assert parse_id(first) == ("users", "moodle", str(remote_id))

    def test_known_value(self) -> None:
        """Ids are stable across releases (the documented example)."""
        assert make_id("moodle", "users", 42) == "usr_nvxw6zdmmuptimq"

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            (("moodle", "users", 1), ("moodle", "users", 2)),
            (("moodle", "users", 1), ("talentlms", "users", 1)),
            (("moodle", "users", 1), ("moodle", "skills", 1)),
            (("moodle", "course_revisions", "1:2"), ("moodle", "course_revisions", "12")),
        ],
        ids=["remote-id", "connector", "model", "separator"],
    )
    def test_different_records_get_different_ids(self, a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
        """Ids differ when the remote id, the connector or the model differs."""
        assert make_id(*a) != make_id(*b)

    @pytest.mark.parametrize(
        ("model", "prefix"),
        [("users", "usr_"), ("course_providers", "cpv_"), ("courses", "crs_"), ("course_revisions", "rev_"),
         ("course_progressions", "prg_"), ("skills", "skl_"), ("revision_skills", "rsk_")],
    )
    def test_prefix_names_the_model(self, model: Any, prefix: str) -> None:
        """An id's prefix shows which model it belongs to."""
        assert make_id("toylms", model, 1).startswith(prefix)

    @pytest.mark.parametrize(
        "value",
        ["", "usr_", "usr", "xyz_nvxw6zdmmuptimq", "usr_!!!", "usr_mfrggzdf", "42", "remote:42"],
        ids=["empty", "prefix-only", "no-separator", "unknown-prefix", "not-base32", "no-connector",
             "number", "remote-form"],
    )
    def test_parse_rejects_what_is_not_an_id(self, value: str) -> None:
        """parse_id raises ValueError for anything make_id did not produce."""
        with pytest.raises(ValueError, match="is not an lmsconnect id"):
            parse_id(value)


class TestEnums:
    @pytest.mark.parametrize(
        "enum", [UserStatus, RevisionStatus, ProgressionStatus, CourseType], ids=lambda e: e.__name__
    )
    @pytest.mark.parametrize("value", ["SUSPENDED", "", "active", "42"])
    def test_unforeseen_values_become_unknown(self, enum: Any, value: str) -> None:
        """A value nobody foresaw becomes UNKNOWN instead of failing the read."""
        assert enum(value) is enum.UNKNOWN

    @pytest.mark.parametrize(
        ("enum", "members"),
        [
            (UserStatus, {"ACTIVE", "INACTIVE", "UNKNOWN"}),
            (RevisionStatus, {"ACTIVE", "INACTIVE", "UNKNOWN"}),
            (ProgressionStatus, {"ENROLLED", "IN_PROGRESS", "COMPLETED", "DROPPED", "UNKNOWN"}),
            (CourseType, {"EXTERNAL", "UNKNOWN"}),
        ],
        ids=lambda v: getattr(v, "__name__", "members"),
    )
    def test_members(self, enum: Any, members: set[str]) -> None:
        """Each enum has the unified values, which are also their string form."""
        assert {m.value for m in enum} == members
        for member in enum:
            assert enum(member.value) is member
            assert str(member) == member.value
