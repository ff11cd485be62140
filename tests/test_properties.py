"""Property tests: signing, argument validation, decoding arbitrary payloads, secrets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okx_grid_async import (
    AuthenticationError,
    Credentials,
    GridClient,
    InvalidArgumentError,
    LocalRateLimiter,
    MalformedResponseError,
    OKXAPIError,
    OKXError,
)
from okx_grid_async._models import position_parser
from okx_grid_async._validation import check_positive_decimal, wire_decimal
from okx_grid_async.simulator import GridSimulator

text = st.text(st.characters(codec="utf-8"), max_size=60)


@given(
    # Credentials refuse control characters (Cc), NUL among them; no surrogates (Cs).
    secret=st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=64),
    timestamp=text,
    method=st.sampled_from(["GET", "POST", "get", "post"]),
    path=text,
    body=text,
)
def test_signature_equals_an_independent_hmac(
    secret: str, timestamp: str, method: str, path: str, body: str
) -> None:
    expected = base64.b64encode(
        hmac.new(
            secret.encode("utf-8"),
            (timestamp + method.upper() + path + body).encode("utf-8"),
            hashlib.sha256,
        ).digest()
    ).decode("ascii")
    assert Credentials("k", secret, "p").sign(timestamp, method, path, body) == expected


numbers = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


@given(value=numbers)
def test_positive_decimal_check_accepts_exactly_finite_positive_non_float_numbers(
    value: Any,
) -> None:
    if isinstance(value, float | bool) or value is None:
        with pytest.raises(TypeError, match="sz"):
            check_positive_decimal(value, "sz")
        return
    try:
        result = check_positive_decimal(value, "sz")
    except InvalidArgumentError as exc:
        message = str(exc)
        assert message.startswith("sz must")
    else:
        assert isinstance(result, Decimal)
        assert result.is_finite()
        assert result > 0
        assert not isinstance(value, float | bool)
        assert result == Decimal(value.strip() if isinstance(value, str) else value)
        assert len(wire_decimal(result)) < 64  # bounded, whatever the exponent was


FIELDS = [
    "avgPx",
    "liqPx",
    "pos",
    "mgnRatio",
    "imr",
    "mmr",
    "upl",
    "uplRatio",
    "last",
    "notionalUsd",
    "adl",
    "markPx",
    "lever",
    "cTime",
    "uTime",
]
field_values = st.one_of(
    st.just(""),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.integers(min_value=0, max_value=2**53).map(str),
    text,
    st.integers(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


@given(
    row=st.fixed_dictionaries(
        {"algoId": st.one_of(st.text(max_size=20), st.integers())},
        optional=dict.fromkeys(FIELDS, field_values),
    ),
    extra=st.dictionaries(st.text(max_size=10), st.integers(), max_size=3),
    code=st.one_of(st.just("0"), st.sampled_from(["50011", "51293", "1"]), st.integers()),
)
def test_any_okx_shaped_payload_decodes_or_raises_a_typed_error(
    row: dict[str, Any], extra: dict[str, int], code: Any
) -> None:
    payload = {"code": code, "msg": "", "data": [{**extra, **row}]}
    raw = json.dumps(payload).encode()
    try:
        (position,) = position_parser.parse(raw, 200)
    except (MalformedResponseError, OKXAPIError):
        return
    assert code == "0"
    for name, attr in (("avgPx", "avg_px"), ("pos", "pos"), ("markPx", "mark_px")):
        value = row.get(name, "")
        got = getattr(position, attr)
        assert got == (Decimal(value) if value != "" else None)


# Secret-like strings that cannot occur in ordinary output by chance: a marker no
# code or message contains, then random hex (Hypothesis also tries string constants
# it finds in the code under test, such as exception names: those are no leak).
secrets = st.binary(min_size=8, max_size=24).map(lambda raw: "zQk" + raw.hex())


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=secrets, passphrase=secrets)
def test_secrets_never_appear_in_reprs_errors_or_debug_logs(secret: str, passphrase: str) -> None:
    handler = _Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        seen = asyncio.run(_exercise(secret, passphrase))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    everything = "\n".join([*seen, *handler.lines])
    assert handler.lines  # debug logging did happen
    assert secret not in everything
    assert passphrase not in everything


async def _exercise(secret: str, passphrase: str) -> list[str]:
    seen: list[str] = []
    async with GridSimulator(seed=1) as sim:
        acct = sim.add_account(secret_key=secret, passphrase=passphrase)
        grid = sim.add_grid(acct.user_id)
        creds = Credentials(acct.api_key, secret, passphrase)
        seen += [repr(creds), str(creds), repr(acct)]
        async with GridClient(
            creds, base_url=sim.url, user_id=acct.user_id, rate_limiter=LocalRateLimiter()
        ) as client:
            seen += [repr(client), str(client)]
            await client.get_positions(grid.algo_id)
            await client.close_position(grid.algo_id, mkt_close=True)
            for call in (
                client.get_positions("1"),
                client.close_position(grid.algo_id, mkt_close=True),
            ):
                with pytest.raises(OKXError) as info:
                    await call
                seen += [repr(info.value), str(info.value), repr(info.value.args)]
        wrong = Credentials(acct.api_key, secret + "x", passphrase + "x")
        bad = GridClient(wrong, base_url=sim.url, rate_limiter=LocalRateLimiter())
        # Opening reads the key's User ID, signed: the wrong passphrase fails there.
        with pytest.raises(AuthenticationError) as auth:
            async with bad:
                pass
        seen += [repr(auth.value), str(auth.value), repr(bad)]
        async with GridClient(
            wrong, base_url=sim.url, user_id=acct.user_id, rate_limiter=LocalRateLimiter()
        ) as bad:
            with pytest.raises(AuthenticationError) as auth:
                await bad.get_positions(grid.algo_id)
            seen += [repr(auth.value), str(auth.value), repr(bad)]
    return seen
