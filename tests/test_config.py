"""Connector configuration: `config_field`, validation of connect() kwargs, `Secret` and scrubbing."""

from __future__ import annotations

import pickle
from typing import Any
from urllib.parse import quote, quote_plus

import attrs
import pytest

import lmsconnect
from lmsconnect import ConfigurationError
from lmsconnect._config import build_config, describe_config
from lmsconnect.plugin import ConfigField, Secret, config_field, scrub

SECRET = "sk_live_9f8e7d6c5b4a"


@attrs.frozen(kw_only=True)
class SampleConfig:
    base_url: str = config_field(help="Where the LMS lives", example="https://lms.example.org")
    api_key: Secret = config_field(help="API key from Settings > API", secret=True)
    client_secret: str | None = config_field(help="OAuth client secret", secret=True, default=None)
    page_size: int = config_field(help="Records per page", default=100)
    timeout: float = config_field(help="Seconds", default=30.0)
    verify: bool = config_field(help="Check TLS certificates", default=True)
    region: str | None = config_field(help="Data centre", default=None)


def configure(**values: object) -> SampleConfig:
    return build_config(SampleConfig, "sample", {"base_url": "https://lms.example.org", "api_key": SECRET,
                                                 **values})


class TestDescribeConfig:
    def test_fields_as_users_see_them(self) -> None:
        """Each field is described with its type, required flag, secrecy, help, default and example."""
        fields = {f.name: f for f in describe_config(SampleConfig)}
        assert fields["base_url"] == ConfigField(
            name="base_url", type="str", required=True, secret=False, help="Where the LMS lives",
            example="https://lms.example.org")
        api_key = fields["api_key"]
        assert (api_key.type, api_key.required, api_key.secret) == ("str", True, True)
        assert fields["client_secret"].secret and not fields["client_secret"].required
        assert fields["page_size"].default == 100 and fields["page_size"].type == "int"
        assert fields["region"].type == "str"

    def test_secret_type_alone_marks_a_secret(self) -> None:
        """A field typed Secret is secret even without secret=True."""

        @attrs.frozen(kw_only=True)
        class Implicit:
            token: Secret = config_field(help="token")

        assert describe_config(Implicit)[0].secret

    def test_toy_connector_spec(self) -> None:
        """A connector's spec lists its config fields for the CLI and the docs."""
        spec = lmsconnect._registry.registry.get("toylms").spec
        assert [(f.name, f.secret) for f in spec.config_fields] == [
            ("base_url", False), ("token", True), ("calls_per_second", False)]


class TestBuildConfig:
    def test_values_are_coerced(self) -> None:
        """Strings from a CLI or env become the declared types; secrets become Secret."""
        config = configure(page_size="50", timeout="2.5", verify="false", client_secret="cs-123456")
        assert (config.page_size, config.timeout, config.verify) == (50, 2.5, False)
        assert configure(page_size=40.0, timeout=3).page_size == 40
        assert isinstance(config.api_key, Secret) and config.api_key.reveal() == SECRET
        assert config.client_secret == "cs-123456"

    def test_unknown_field_names_it_and_the_accepted_ones(self) -> None:
        """A misspelt kwarg is named with the list of accepted ones, and its value is not echoed."""
        with pytest.raises(ConfigurationError) as caught:
            configure(api_kye="typo-of-a-secret-value")
        message = str(caught.value)
        assert "unknown config field(s) api_kye" in message
        assert "base_url, api_key, client_secret" in message
        assert "typo-of-a-secret-value" not in message

    @pytest.mark.parametrize(
        "given", [{}, {"base_url": ""}, {"base_url": None}], ids=["absent", "empty", "none"]
    )
    def test_missing_field_is_named_with_its_help(self, given: dict[str, object]) -> None:
        """A missing required field is named, with its help text, so the user knows what to supply."""
        with pytest.raises(ConfigurationError) as caught:
            build_config(SampleConfig, "sample", {"api_key": SECRET, **given})
        assert "missing required config field(s) for 'sample': base_url: Where the LMS lives" in str(
            caught.value
        )

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("page_size", "many", "page_size must be an integer, got 'many'"),
            ("page_size", True, "page_size must be an integer"),
            ("page_size", 2.7, "page_size must be an integer, got 2.7"),
            ("timeout", False, "timeout must be a number"),
            ("timeout", "soon", "timeout must be a number"),
            ("verify", "maybe", "verify must be true or false"),
            ("base_url", 8080, "base_url must be a string, got int"),
            ("region", 3, "region must be a string"),
        ],
        ids=["int-word", "int-bool", "int-fraction", "float-bool", "float", "bool", "str", "optional-str"],
    )
    def test_ill_typed_field_is_named(self, field: str, value: object, message: str) -> None:
        """An ill-typed value is a ConfigurationError naming the field and the expected type."""
        with pytest.raises(ConfigurationError) as caught:
            configure(**{field: value})
        assert message in str(caught.value)
        assert caught.value.connector == "sample"

    @pytest.mark.parametrize(
        ("field", "value"),
        [("api_key", 98765432109), ("api_key", ["sk", "live"]), ("client_secret", 98765432109)],
        ids=["secret-int", "secret-list", "optional-secret-int"],
    )
    def test_ill_typed_secret_is_not_echoed(self, field: str, value: object) -> None:
        """An ill-typed secret is named, never shown."""
        with pytest.raises(ConfigurationError) as caught:
            configure(**{field: value})
        assert field in str(caught.value)
        assert "value not shown: secret" in str(caught.value)
        for text in (str(caught.value), repr(caught.value), str(caught.value.context())):
            assert "98765432109" not in text and "'sk'" not in text

    def test_plain_string_field_refuses_a_secret(self) -> None:
        """A Secret passed where a plain string belongs is refused rather than revealed."""
        with pytest.raises(ConfigurationError, match="base_url is not a secret"):
            configure(base_url=Secret("https://lms.example.org"))

    def test_optional_field_accepts_none(self) -> None:
        """None is accepted for optional fields."""
        assert configure(region=None).region is None


class TestConnectConfiguration:
    def test_connect_validates_kwargs(self) -> None:
        """lmsconnect.connect checks kwargs against the connector's config before anything else."""
        with pytest.raises(ConfigurationError, match="unknown config field"):
            lmsconnect.connect("toylms", base_url="http://127.0.0.1:9", token=SECRET, tokne=SECRET)
        with pytest.raises(ConfigurationError, match=r"missing required config field.*token"):
            lmsconnect.connect("toylms", base_url="http://127.0.0.1:9")
        with pytest.raises(ConfigurationError, match="calls_per_second must be an integer"):
            lmsconnect.connect("toylms", base_url="http://127.0.0.1:9", token=SECRET, calls_per_second="x")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"token": SECRET, "tokne": SECRET},
            {"token": SECRET, "calls_per_second": SECRET},
            {"token": 123456789012},
            {"token": SECRET, "base_url": 5},
        ],
        ids=["misspelt", "secret-in-wrong-field", "secret-ill-typed", "other-field-ill-typed"],
    )
    def test_errors_never_echo_a_secret(self, kwargs: dict[str, Any]) -> None:
        """No configuration error ever shows a secret's value, whichever field it was put in."""
        kwargs.setdefault("base_url", "http://127.0.0.1:9")
        with pytest.raises(ConfigurationError) as caught:
            lmsconnect.connect("toylms", **kwargs)
        for text in (str(caught.value), repr(caught.value), str(caught.value.context())):
            assert SECRET not in text
            assert "123456789012" not in text
        # Nor does any exception chained to it, which tracebacks print ("During handling of ...").
        for chained in chain(caught.value):
            for text in (str(chained), repr(chained), repr(chained.args)):
                assert SECRET not in text and "123456789012" not in text

    def test_unknown_connector(self) -> None:
        """An unknown slug names what is installed and how to install a plugin."""
        with pytest.raises(ConfigurationError, match=r"no connector 'nolms' is installed.*toylms"):
            lmsconnect.connect("nolms")


def chain(exc: BaseException) -> list[BaseException]:
    """Every exception reachable through __context__ and __cause__ (suppressed or not)."""
    seen: list[BaseException] = []
    todo = [exc.__context__, exc.__cause__]
    while todo:
        current = todo.pop()
        if current is not None and current not in seen:
            seen.append(current)
            todo += [current.__context__, current.__cause__]
    return seen


class TestSecret:
    def test_never_shows_itself(self) -> None:
        """str, repr and formatting of a Secret show *** only; reveal() gives the value."""
        key = Secret(SECRET)
        assert (str(key), repr(key), f"{key}", f"{key!r}", f"{key:>30}") == (
            "***", "Secret('***')", "***", "Secret('***')", "***")
        assert "%s" % key == "***"  # noqa: UP031 - old-style formatting must hide it too
        assert key.reveal() == SECRET
        assert SECRET not in repr([key, {"k": key}])

    def test_config_repr_hides_it(self) -> None:
        """The repr of a config holding a Secret does not show the value."""
        assert SECRET not in repr(configure())

    def test_equality_and_truth(self) -> None:
        """Secrets compare by value, hash consistently, are falsy when empty, and unwrap when nested."""
        assert Secret("abc") == Secret("abc") != Secret("abd")
        assert Secret("abc") != "abc"
        assert hash(Secret("abc")) == hash(Secret("abc"))
        assert not Secret("") and Secret("x")
        assert Secret(Secret("abc")).reveal() == "abc"  # type: ignore[arg-type]

    def test_cannot_be_pickled(self) -> None:
        """Pickling (to a cache, a queue) is refused, so the value is not written out by accident."""
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(Secret(SECRET))

    def test_must_be_a_string(self) -> None:
        """A non-string secret is refused with its type, not its value."""
        with pytest.raises(TypeError, match="got int"):
            Secret(12345)  # type: ignore[arg-type]


class TestScrub:
    @pytest.mark.parametrize(
        "secret",
        ["plain-token-123", "a/b+c=d&e f", "ünï©ode-tøken"],
        ids=["plain", "reserved-chars", "unicode"],
    )
    def test_raw_and_percent_encoded_forms(self, secret: str) -> None:
        """scrub removes a secret raw, percent-encoded and form-encoded."""
        text = f"raw={secret} path={quote(secret, safe='')} form={quote_plus(secret, safe='')}"
        cleaned = scrub(text, [secret])
        for form in (secret, quote(secret, safe=""), quote_plus(secret, safe="")):
            assert form not in cleaned
        assert cleaned.count("***") == 3

    @pytest.mark.parametrize(
        "shown",
        [
            "s3cr3t/t0ken%2Bwith%3Dchars%26more+x",
            "s3cr3t%2Ft0ken%2Bwith=chars&more%20x",
            "s3cr3t%2ft0ken%2bwith%3dchars%26more%20x",
            "%73%33cr3t/t0ken+with=chars&more x",
        ],
        ids=["yarl-query", "yarl-path", "lowercase-hex", "mixed"],
    )
    def test_any_mix_of_encodings(self, shown: str) -> None:
        """However an encoder or a vendor's echo mixed raw and %XX characters, the secret is found."""
        assert scrub(f"url=/x?t={shown}&page=2", ["s3cr3t/t0ken+with=chars&more x"]) == "url=/x?t=***&page=2"

    def test_short_values_are_left_alone(self) -> None:
        """Values under 4 characters are not scrubbed (they would mangle ordinary text)."""
        assert scrub("id=abc", ["abc"]) == "id=abc"

    def test_longest_first(self) -> None:
        """A secret containing another is removed whole."""
        assert scrub("token=abcd-efgh", ["abcd", "abcd-efgh"]) == "token=***"


class TestScrubAtScale:
    KEY = "k3y/+ " + "0123456789abcdef" * 16_384  # a 256 KiB API key

    @pytest.mark.parametrize("encode", [str, lambda v: quote(v, safe=""), lambda v: quote_plus(v, safe="")],
                             ids=["raw", "percent", "form"])
    def test_a_huge_key_is_found_in_any_encoding(self, encode: Any) -> None:
        """A 256 KiB key is scrubbed raw, percent- and form-encoded, and nothing around it is touched."""
        text = f"before {encode(self.KEY)} middle {encode(self.KEY)} after"
        assert scrub(text, [self.KEY]) == "before *** middle *** after"

    def test_a_near_miss_is_left_alone(self) -> None:
        """Text holding all but the last character of a huge key is not scrubbed (and costs one pass)."""
        text = "x" + self.KEY[:-1] + "!"
        assert scrub(text, [self.KEY]) == text

    def test_multibyte_characters_percent_encoded(self) -> None:
        """A key with non-ASCII characters is found when its UTF-8 bytes are percent-encoded in any case."""
        key = "tøkén-" + "ü" * 1000
        text = "a=" + quote(key, safe="").lower() + "&b=" + quote(key, safe="") + "&c=%C3"
        assert scrub(text, [key]) == "a=***&b=***&c=%C3"
