"""Signing against vectors computed independently (openssl dgst -sha256 -hmac ... | base64)."""

from __future__ import annotations

import re

import pytest

from okx_grid_async import Credentials
from okx_grid_async._credentials import format_timestamp

SECRET = "TEST-SECRET-22CBA3"
TS = "2020-12-08T09:08:57.715Z"

# Each signature below was produced outside Python with:
#   printf '%s' "$TS$METHOD$PATH$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
VECTORS = [
    (
        "GET",
        "/api/v5/tradingBot/grid/positions?algoOrdType=contract_grid&algoId=448965992920907776",
        "",
        "8bAop5u440iJ79Cb7dRt9BKXKTyCyVFndCmURSmjiWM=",
    ),
    (
        "POST",
        "/api/v5/tradingBot/grid/close-position",
        '{"algoId":"448965992920907776","mktClose":true}',
        "eZ1oJoptuDjiCR4tqThHjyA3cfCSeczr2hV0shLR2YA=",
    ),
    (
        "POST",
        "/api/v5/tradingBot/grid/close-position",
        '{"algoId":"448965992920907776","mktClose":false,"sz":"2","px":"29000.5"}',
        "WSCjA1MSqvixchw8KrkZNz9P0XBCKDF7+zo4YYDpvDI=",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), VECTORS)
def test_signature_matches_independent_vector(
    method: str, path: str, body: str, expected: str
) -> None:
    creds = Credentials("key-1", SECRET, "pass")
    assert creds.sign(TS, method, path, body) == expected


def test_method_is_upper_cased_before_signing() -> None:
    creds = Credentials("key-1", SECRET, "pass")
    method, path, body, expected = VECTORS[0]
    assert creds.sign(TS, method.lower(), path, body) == expected


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (1607418537.715, "2020-12-08T09:08:57.715Z"),
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1607418537.9996, "2020-12-08T09:08:58.000Z"),  # rounds into the next second
        (1653400065.917, "2022-05-24T13:47:45.917Z"),
    ],
)
def test_timestamp_format(epoch: float, text: str) -> None:
    assert format_timestamp(epoch) == text


def test_repr_and_str_hide_secret_and_passphrase() -> None:
    creds = Credentials("my-api-key-ABCD", "s3cr3t-value", "pa55phrase")
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
        assert "s3cr3t-value" not in text
        assert "pa55phrase" not in text
        assert "my-api-key" not in text
        assert "ABCD" in text


def test_credentials_refuse_pickling() -> None:
    import pickle

    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Credentials("k", "s", "p"))


@pytest.mark.parametrize("field", ["api_key", "secret_key", "passphrase"])
def test_empty_credential_part_is_refused(field: str) -> None:
    parts = {"api_key": "k", "secret_key": "s", "passphrase": "p"}
    parts[field] = ""
    with pytest.raises(ValueError, match=field):
        Credentials(**parts)


def test_non_str_credential_part_is_refused() -> None:
    with pytest.raises(TypeError, match="secret_key"):
        Credentials("k", b"s", "p")  # type: ignore[arg-type]


def test_from_env_reads_three_variables() -> None:
    env = {"OKX_API_KEY": "k", "OKX_SECRET_KEY": SECRET, "OKX_PASSPHRASE": "p"}
    creds = Credentials.from_env(env)
    assert creds.api_key == "k"
    assert creds == Credentials("k", SECRET, "p")
    assert creds != Credentials("k", SECRET, "other")


def test_from_env_names_every_missing_variable() -> None:
    with pytest.raises(ValueError, match="OKX_SECRET_KEY, OKX_PASSPHRASE"):
        Credentials.from_env({"OKX_API_KEY": "k", "OKX_SECRET_KEY": ""})


CONTROL_CHARACTERS = [
    ("\r", "CR"),
    ("\n", "LF"),
    ("\x00", "NUL"),
    ("\t", "TAB"),
    ("\x1b", "U+001B"),
    ("\x7f", "U+007F"),
    ("\x85", "U+0085"),
]


@pytest.mark.parametrize("field", ["api_key", "secret_key", "passphrase"])
@pytest.mark.parametrize(("char", "label"), CONTROL_CHARACTERS)
def test_a_control_character_is_refused_naming_the_part_not_its_value(
    field: str, char: str, label: str
) -> None:
    parts = {"api_key": "KEYVALUE", "secret_key": "SECRETVALUE", "passphrase": "PASSVALUE"}
    parts[field] += char
    expected = rf"^{field} contains a control character \({re.escape(label)}\)"
    with pytest.raises(ValueError, match=expected):
        Credentials(**parts)
    names = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
    variables = dict(zip(names, parts.values(), strict=True))
    with pytest.raises(ValueError, match=r"^OKX_\w+ contains a control character") as info:
        Credentials.from_env(variables)
    for value in parts.values():
        assert value.rstrip(char) not in str(info.value)


def test_spaces_and_non_ascii_letters_are_not_control_characters() -> None:
    assert Credentials("k k", "s\u00e9cret", "pass phrase").api_key == "k k"
