"""Capability tables: built as data, validated at import, enforced by the core before any call, rendered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

import lmsconnect
from lmsconnect import Capabilities, NotSupported, Support
from lmsconnect._capabilities import matrix_rows
from lmsconnect.plugin import ActionFlag, action_support, model_support
from lmsconnect.testing import simulator

TOY = lmsconnect._registry.registry.get("toylms").capabilities


def build(**overrides: Any) -> Capabilities:
    arguments: dict[str, Any] = {
        "slug": "probe",
        "name": "Probe LMS",
        "models": {"users": model_support("first_name", partial={"status": "no suspended state"})},
        "actions": {"deactivate_course": action_support("course_id", flags={"destructive"}, note="Deletes.")},
        "features": {"passthrough": ""},
        "unsupported_notes": {"skills": "Probe LMS has no skills.", "complete_course": "No completion API."},
    }
    arguments.update(overrides)
    return Capabilities.build(**arguments)


class TestBuild:
    def test_everything_not_given_is_unsupported(self) -> None:
        """Models, actions and features left out are present and unsupported, with their notes."""
        table = build()
        assert set(table.models) == {"users", "course_providers", "courses", "course_revisions",
                                     "course_progressions", "skills", "revision_skills", "course_items"}
        assert set(table.actions) == {"upsert_courses", "deactivate_course", "enroll_user", "complete_course"}
        assert set(table.features) == {"passthrough", "scope_testing", "per_model_tests"}
        assert not table.models["skills"].supported
        assert table.models["skills"].note == "Probe LMS has no skills."
        assert table.actions["complete_course"].note == "No completion API."
        assert table.features["passthrough"].supported and not table.features["scope_testing"].supported

    def test_model_support_implies_the_base_fields(self) -> None:
        """id, remote_id, changed_at, remote_deleted_at and remote_data come with every supported model."""
        users = build().models["users"]
        for field in ("id", "remote_id", "changed_at", "remote_deleted_at", "remote_data", "first_name"):
            assert users.field(field).support is Support.SUPPORTED
        assert users.field("status").support is Support.PARTIAL
        assert users.field("status").note == "no suspended state"
        assert users.field("work_email").support is Support.UNSUPPORTED
        assert "work_email" in users.fields  # completed, so the JSON lists every field

    def test_action_flags(self) -> None:
        """Action flags are data: destructive, asynchronous, rollback."""
        action = build().actions["deactivate_course"]
        assert action.destructive and not action.asynchronous and not action.rollback
        assert action.flags == frozenset({ActionFlag.DESTRUCTIVE})

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"models": {"learners": model_support()}}, "unknown model 'learners'"),
            ({"models": {"users": model_support("email")}}, "model 'users' has no field(s) ['email']"),
            ({"actions": {"archive_course": action_support()}}, "unknown action 'archive_course'"),
            ({"actions": {"enroll_user": action_support("course_id")}},
             "action 'enroll_user' has no input field(s) ['course_id']"),
            ({"actions": {"upsert_courses": action_support("items.course.name")}},
             "no input field(s) ['items.course.name']"),
            ({"features": {"webhooks": ""}}, "unknown feature 'webhooks'"),
        ],
        ids=["model", "model-field", "action", "action-field", "nested-action-field", "feature"],
    )
    def test_unknown_names_are_rejected(self, overrides: dict[str, Any], message: str) -> None:
        """A typo in a table fails when the table is built (at import), naming the unknown name."""
        with pytest.raises(ValueError) as caught:
            build(**overrides)
        assert message in str(caught.value)

    def test_unknown_flag_is_rejected(self) -> None:
        """An action flag outside destructive/asynchronous/rollback is refused."""
        with pytest.raises(ValueError, match="irreversible"):
            action_support("course_id", flags={"irreversible"})

    def test_note_for_an_unlisted_field_is_rejected(self) -> None:
        """A note for a field that is not listed as supported or partial is a mistake, and refused."""
        with pytest.raises(ValueError, match="'status', which is not listed"):
            model_support("first_name", notes={"status": "from the active flag"})


class TestRendering:
    def test_json_shape(self) -> None:
        """The JSON has the documented shape: models/actions with fields, flags, notes; features."""
        data = json.loads(build().to_json())
        assert data["slug"] == "probe" and data["name"] == "Probe LMS"
        assert data["models"]["users"]["supported"] is True
        assert data["models"]["users"]["fields"]["first_name"] == {"support": "supported", "note": ""}
        assert data["models"]["users"]["fields"]["status"] == {
            "support": "partial", "note": "no suspended state"}
        assert data["models"]["skills"] == {
            "supported": False, "by_default": True, "note": "Probe LMS has no skills.",
            "fields": {f: {"support": "unsupported", "note": ""} for f in data["models"]["skills"]["fields"]},
        }
        action = data["actions"]["deactivate_course"]
        assert (action["supported"], action["flags"], action["note"]) == (True, ["destructive"], "Deletes.")
        assert action["fields"]["course_id"] == {"support": "supported", "note": ""}
        assert data["actions"]["upsert_courses"]["fields"]["items.course.title"]["support"] == "unsupported"
        assert data["features"]["passthrough"] == {"supported": True, "note": ""}

    def test_json_round_trips(self) -> None:
        """from_dict(to_dict()) gives back the same table."""
        table = build()
        assert Capabilities.from_dict(json.loads(table.to_json())) == table
        assert Capabilities.from_dict(TOY.to_dict()) == TOY

    def test_markdown_page(self) -> None:
        """The Markdown page lists supported fields, flags, notes and what is not supported."""
        page = build().to_markdown()
        assert page.startswith("# Probe LMS (`probe`) capabilities")
        assert "| `first_name` | supported |  |" in page
        assert "| `status` | partial | no suspended state |" in page
        assert "### deactivate_course (**destructive**)" in page
        assert "`skills` (Probe LMS has no skills.)" in page
        assert "| API Passthrough | yes |  |" in page
        assert "| `work_email` |" not in page
        assert "Not available: `last_name`, `work_email`" in page

    def test_unsupported_fields_with_a_reason_are_shown(self) -> None:
        """A field declared unsupported with a reason appears in the page with that reason."""
        users = model_support("first_name", unsupported={"locale": "the API has no locale"})
        page = Capabilities.build(
            slug="probe", name="Probe LMS", models={"users": users}, actions={}, features={}
        ).to_markdown()
        assert "| `locale` | unsupported | the API has no locale |" in page
        assert "`locale`" not in page.split("Not available:")[1].split("\n")[0]
        with pytest.raises(ValueError, match="supported or partial and as unsupported"):
            model_support("locale", unsupported={"locale": "no"})

    def test_matrix_across_connectors(self) -> None:
        """The matrix has one column per connector and a row per model, action and feature."""
        from lmsconnect._capabilities import matrix_markdown, matrix_rows

        header, rows = matrix_rows([build(), TOY])
        assert header == ["", "probe", "toylms"]
        by_name = {row[0]: row[1:] for row in rows}
        assert by_name["model users"] == ["partial", "yes"]
        assert by_name["action deactivate_course"] == ["yes (destructive)", "—"]
        assert by_name["feature scope_testing"] == ["—", "yes"]
        assert len(rows) == 8 + 4 + 3
        assert "| model users | partial | yes |" in matrix_markdown([build(), TOY])


@pytest.fixture
async def toy() -> AsyncIterator[tuple[Any, lmsconnect.Connector[Any]]]:
    async with simulator("toylms") as sim:
        lms = lmsconnect.connect("toylms", **sim.connect_config)
        async with lms:
            yield sim, lms


class TestModes:
    """A connector whose abilities depend on the account lists a table per mode."""

    @staticmethod
    def moded() -> Capabilities:
        base = build()
        gentle = base.variant(
            mode="v2",
            note="The newer API.",
            actions={"deactivate_course": action_support("course_id", flags={"asynchronous"}, note="Hides.")},
        )
        return base.variant(note="Depends on the API.", modes={"v2": gentle, "v1": base.variant(mode="v1")})

    def test_variant_replaces_actions_with_complete_fields(self) -> None:
        table = self.moded()
        v2 = table.modes["v2"]
        assert v2.mode == "v2" and v2.note == "The newer API."
        assert v2.actions["deactivate_course"].flags == frozenset({ActionFlag.ASYNCHRONOUS})
        assert set(v2.actions["upsert_courses"].fields) == set(table.actions["upsert_courses"].fields)
        assert table.modes["v1"].actions["deactivate_course"].destructive

    def test_mode_tables_must_match_their_name_and_slug(self) -> None:
        base = build()
        with pytest.raises(ValueError, match="mode 'v2'"):
            base.variant(modes={"v2": base.variant(mode="v1")})
        with pytest.raises(ValueError, match="mode 'x'"):
            build(modes={"x": build(slug="other", mode="x")})

    def test_json_round_trips_with_modes_and_stays_as_it_was_without(self) -> None:
        table = self.moded()
        data = json.loads(table.to_json())
        assert data["note"] == "Depends on the API." and set(data["modes"]) == {"v2", "v1"}
        assert Capabilities.from_dict(data) == table
        assert not {"mode", "modes", "note"} & set(json.loads(build().to_json()))

    def test_markdown_and_matrix_show_each_mode_where_it_differs(self) -> None:
        table = self.moded()
        page = table.to_markdown()
        assert "## Connection modes" in page and "### Mode `v2`" in page
        assert "- `deactivate_course` (**asynchronous**): Hides." in page
        assert "Actions as in the table above." not in page.split("### Mode `v2`")[1].split("### Mode")[0]
        row = next(r for r in matrix_rows([table])[1] if r[0] == "action deactivate_course")
        assert row[1] == "v2: yes (asynchronous); v1: yes (destructive)"


class TestEnforcement:
    async def test_unsupported_model_raises_at_the_call(self, toy: tuple[Any, Any]) -> None:
        """list() of a model the table lacks raises NotSupported at once (not at iteration), with no call."""
        sim, lms = toy
        with pytest.raises(NotSupported) as caught:
            lms.list(lmsconnect.Skill)
        assert "capability table marks it unsupported" in str(caught.value)
        assert "'skills'" in str(caught.value)
        assert caught.value.connector == "toylms"
        assert sim.calls == 0

    @pytest.mark.parametrize(
        ("action", "value"),
        [("complete_course", {"course_progression_id": "remote:1"}),
         ("deactivate_course", {"course_id": "x"})],
        ids=["complete_course", "deactivate_course"],
    )
    async def test_unsupported_action_quotes_the_table(
        self, toy: tuple[Any, Any], action: str, value: dict[str, Any]
    ) -> None:
        """An action the table lacks raises NotSupported quoting the table's note, before any call."""
        sim, lms = toy
        with pytest.raises(NotSupported) as caught:
            await getattr(lms, action)(value)
        assert f"does not support the action '{action}'" in str(caught.value)
        if TOY.actions[action].note:  # type: ignore[index]
            assert TOY.actions[action].note in str(caught.value)  # type: ignore[index]
        assert sim.calls == 0

    async def test_unsupported_action_is_refused_even_with_invalid_input(self, toy: tuple[Any, Any]) -> None:
        """NotSupported comes first: the caller learns the action is impossible before fixing input."""
        sim, lms = toy
        with pytest.raises(NotSupported):
            await lms.complete_course({"score": 500})
        assert sim.calls == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [("duration", 90), ("languages", ["en"]), ("course_url", "https://content.example/x")],
    )
    async def test_unsupported_input_field_is_refused(
        self, toy: tuple[Any, Any], field: str, value: Any
    ) -> None:
        """Setting an input field the table marks unsupported raises NotSupported naming it, with no call."""
        sim, lms = toy
        payload = {"items": [{"origin_id": "c-9", "course": {"title": "Nine", field: value}}]}
        with pytest.raises(NotSupported, match=f"'items.course.{field}'"):
            await lms.upsert_courses(payload)
        assert sim.calls == 0

    async def test_unsupported_feature(self) -> None:
        """passthrough on a connector whose table lacks it raises NotSupported."""
        table = build(features={})
        with pytest.raises(NotSupported, match="does not offer API Passthrough"):
            table.require_feature("passthrough")
