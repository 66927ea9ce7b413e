"""Every exception body recorded from Moodle maps to the error a caller can act on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from lmsconnect_moodle._errors import errorcode_of, is_exception, map_exception

from lmsconnect import (
    AuthenticationError,
    InvalidInput,
    InvalidRemoteResponse,
    LMSConnectError,
    NotFound,
    PermissionDenied,
    RemoteError,
)

FIXTURES = Path(
    os.environ.get(
        "LMSCONNECT_MOODLE_FIXTURES",
        Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "moodle-5",
    )
)

EXPECTED: dict[str, type[LMSConnectError]] = {
    "invalidtoken": AuthenticationError,
    "accessexception": PermissionDenied,
    "cannotviewreport": PermissionDenied,
    "invalidparameter": InvalidInput,
    "codingerror": InvalidInput,
    "errorcatcontextnotvalid": InvalidInput,
    "invalidrecordunknown": NotFound,
    "invalidrecord": NotFound,
    "invalidcoursemodule": NotFound,
    "usernotenroled": NotFound,
}


def recorded_exceptions() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for path in sorted(FIXTURES.glob("*.request.json")):
        request = json.loads(path.read_text())
        if request["response"]["kind"] != "exception":
            continue
        body = json.loads(path.with_name(path.name.replace(".request.json", ".json")).read_text())
        found.append((path.name.split(".")[0], request["wsfunction"], body))
    return found


RECORDED = recorded_exceptions() if FIXTURES.exists() else []


@pytest.mark.skipif(not RECORDED, reason=f"no recordings at {FIXTURES}")
@pytest.mark.parametrize(("function", "body"), [r[1:] for r in RECORDED], ids=[r[0] for r in RECORDED])
def test_recorded_exception_maps(function: str, body: dict[str, str]) -> None:
    """The recorded body is recognised as an exception and maps by its errorcode, keeping the code."""
    assert is_exception(body)
    error = map_exception(function, body)
    assert isinstance(error, EXPECTED[body["errorcode"]])
    assert errorcode_of(error) == body["errorcode"]
    assert body["errorcode"] in str(error)


def test_access_exception_names_the_function() -> None:
    """Function-not-in-service is a PermissionDenied whose permission is the function's name."""
    error = map_exception(
        "core_user_create_users",
        {
            "exception": "webservice_access_exception",
            "errorcode": "accessexception",
            "message": "Access control exception",
        },
    )
    assert isinstance(error, PermissionDenied) and error.permission == "core_user_create_users"


def test_unknown_function_says_so_for_passthrough() -> None:
    """Moodle answers an unknown function like a missing record; a passthrough error says both."""
    body = {
        "exception": "dml_missing_record_exception",
        "errorcode": "invalidrecordunknown",
        "message": "Can't find data record in database.",
    }
    assert "no such web-service function" in str(map_exception("core_nope", body, known=False))
    assert "no such web-service function" not in str(map_exception("core_course_get_contents", body))


def test_data_is_not_an_exception() -> None:
    """Lists, null, 0 and ordinary objects are data."""
    bodies: list[object] = [[], None, 0, {"warnings": []}, {"exceptions": "x"}]
    for body in bodies:
        assert not is_exception(body)


def test_an_exception_key_is_never_data() -> None:
    """A body with an ``exception`` key but no errorcode is an error, never a success without warnings."""
    body = {"exception": "moodle_exception", "message": "Odd"}
    assert is_exception(body)
    assert type(map_exception("core_course_update_courses", body)) is RemoteError


@pytest.mark.parametrize(
    "body",
    [
        {"exception": None, "errorcode": "invalidtoken", "message": "x"},
        {"exception": "moodle_exception", "errorcode": ["invalidtoken"], "message": "x"},
        {"exception": "moodle_exception", "errorcode": "x", "message": {"a": 1}},
        {"exception": "moodle_exception", "errorcode": "x", "message": "m", "debuginfo": 10**30},
    ],
    ids=["exception-null", "errorcode-list", "message-object", "debuginfo-number"],
)
def test_odd_exception_body_is_an_invalid_remote_response(body: dict[str, object]) -> None:
    """An exception body whose fields are not text names the function and the field, and raises nothing."""
    error = map_exception("core_course_get_courses", body)
    assert isinstance(error, InvalidRemoteResponse)
    assert "core_course_get_courses" in str(error) and "ExceptionWire." in str(error)


def test_huge_vendor_text_is_cut_after_scrubbing() -> None:
    """A megabyte of message is cut; a secret in it is scrubbed before the cut, never half left."""
    secret = "f" * 32
    code, message = "x" * 90 + secret, "a" * 1990 + secret * 10
    body = {"exception": "moodle_exception", "errorcode": code, "message": message}
    error = map_exception("core_x", body, scrub=lambda text: text.replace(secret, "***"))
    assert "fffff" not in str(error) and len(str(error)) < 1500


def test_unclassified_is_a_remote_error() -> None:
    """An errorcode nobody foresaw is a RemoteError carrying Moodle's message."""
    error = map_exception("core_x", {"exception": "moodle_exception", "errorcode": "weird", "message": "Odd"})
    assert type(error) is RemoteError and "Odd" in str(error)
