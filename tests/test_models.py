"""Decoding OKX answers: the seeds' examples, "" numbers, unknown fields, bad payloads, codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import pytest

from okx_grid_async import (
    AuthenticationError,
    ClosingNotAllowedError,
    ClosingOrderExistsError,
    EndpointTimeoutError,
    GridNotFoundError,
    GridStateError,
    GridStoppingError,
    HTTPStatusError,
    MalformedResponseError,
    NoPositionError,
    NotGridPolicyError,
    OKXAPIError,
    OrderNotFoundError,
    ParameterError,
    RateLimitError,
    ServiceUnavailableError,
    TimestampExpiredError,
)
from okx_grid_async._models import ResultParser, close_result_parser, position_parser

DATA = Path(__file__).parent / "data"
POSITIONS = (DATA / "positions.json").read_bytes()
CLOSE = (DATA / "close-position.json").read_bytes()


def test_seed_positions_example_decodes_to_decimals_and_utc_times() -> None:
    (pos,) = position_parser.parse(POSITIONS, 200)
    assert pos.algo_id == "449327675342323712"
    assert pos.avg_px == Decimal("29215.0142857142857149")  # every digit kept
    assert pos.pos == Decimal("35")
    assert pos.mgn_ratio == Decimal("217.19370606167573")
    assert pos.mmr == Decimal("40.907720000000005")
    assert pos.adl == Decimal("1")
    assert pos.c_time == datetime(2022, 5, 24, 13, 47, 45, 917000, tzinfo=UTC)
    assert pos.u_time is not None
    assert pos.u_time.tzinfo is UTC
    assert (pos.inst_id, pos.inst_type, pos.pos_side, pos.mgn_mode, pos.ccy) == (
        "BTC-USDT-SWAP",
        "SWAP",
        "net",
        "cross",
        "USDT",
    )
    assert not pos.is_empty


def test_seed_close_example_decodes() -> None:
    (result,) = close_result_parser.parse(CLOSE, 200)
    assert result.algo_id == "448965992920907776"
    assert result.ord_id == ""
    assert result.algo_cl_ord_id == ""
    assert result.tag == ""


def _with_row(**changes: object) -> bytes:
    doc = json.loads(POSITIONS)
    doc["data"][0].update(changes)
    return json.dumps(doc).encode()


def test_empty_strings_become_none_not_errors() -> None:
    raw = _with_row(liqPx="", mgnRatio="", cTime="", pos="0", upl="", adl="")
    (pos,) = position_parser.parse(raw, 200)
    assert pos.liq_px is None
    assert pos.mgn_ratio is None
    assert pos.upl is None
    assert pos.adl is None
    assert pos.c_time is None
    assert pos.pos == Decimal(0)
    assert pos.is_empty


def test_unknown_fields_are_ignored() -> None:
    doc = json.loads(POSITIONS)
    doc["data"][0]["brandNewField"] = {"nested": [1, 2]}
    doc["extraTopLevel"] = True
    (pos,) = position_parser.parse(json.dumps(doc).encode(), 200)
    assert pos.pos == Decimal("35")


def test_structs_are_frozen() -> None:
    (pos,) = position_parser.parse(POSITIONS, 200)
    with pytest.raises(AttributeError):
        pos.pos = Decimal(1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", 200, "not JSON"),
        (POSITIONS[: len(POSITIONS) // 2], 200, "not JSON"),
        (b'{"code":"0","msg":""}', 200, "data"),
        (b'{"code":"0","msg":"","data":{"algoId":"1"}}', 200, "Expected `array`"),
        (b'{"code":"0","msg":"","data":[{"algoId":1}]}', 200, "Expected `str`"),
        (_with_row(avgPx="not-a-number"), 200, "avgPx"),
        (_with_row(markPx="NaN"), 200, "finite"),
        (_with_row(cTime="yesterday"), 200, "cTime"),
    ],
)
def test_malformed_answers_raise_typed_error_keeping_raw_text(
    raw: bytes, status: int, reason: str
) -> None:
    with pytest.raises(MalformedResponseError, match=reason) as info:
        position_parser.parse(raw, status)
    kept = info.value.raw_text.split("… [")[0]
    assert kept
    assert raw.decode(errors="replace").startswith(kept)


def test_raw_text_on_errors_is_truncated() -> None:
    raw = b"<html>" + b"x" * 10_000
    with pytest.raises(MalformedResponseError) as info:
        position_parser.parse(raw, 200)
    assert len(info.value.raw_text) < 600
    assert "more characters" in info.value.raw_text


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", b"502 Bad Gateway", b'"Bad Gateway"']
)
def test_error_page_without_envelope_is_an_http_status_error(body: bytes) -> None:
    with pytest.raises(HTTPStatusError) as info:
        position_parser.parse(body, 502)
    assert info.value.http_status == 502
    assert "Bad Gateway" in info.value.raw_text


CODE_TABLE = [
    ("50011", 429, RateLimitError),
    ("50011", 200, RateLimitError),
    ("50001", 503, ServiceUnavailableError),
    ("50013", 429, ServiceUnavailableError),
    ("50026", 500, ServiceUnavailableError),
    ("50004", 200, EndpointTimeoutError),
    ("50014", 200, ParameterError),
    ("51000", 200, ParameterError),
    ("50101", 401, AuthenticationError),
    ("50102", 401, TimestampExpiredError),
    ("50103", 401, AuthenticationError),
    ("50105", 401, AuthenticationError),
    ("50110", 401, AuthenticationError),
    ("50111", 401, AuthenticationError),
    ("50112", 401, AuthenticationError),
    ("50113", 401, AuthenticationError),
    ("50114", 401, AuthenticationError),
    ("51058", 200, NoPositionError),
    ("51059", 200, GridStateError),
    ("51288", 200, GridStoppingError),
    ("51289", 200, GridNotFoundError),
    ("51291", 200, GridNotFoundError),
    ("51293", 200, GridNotFoundError),
    ("51341", 200, ClosingNotAllowedError),
    ("51342", 200, ClosingOrderExistsError),
    ("51345", 200, NotGridPolicyError),
    ("51603", 200, OrderNotFoundError),
    ("59999", 200, OKXAPIError),
]


@pytest.mark.parametrize(("code", "status", "cls"), CODE_TABLE)
def test_every_code_maps_to_its_class(code: str, status: int, cls: type[OKXAPIError]) -> None:
    raw = json.dumps({"code": code, "msg": f"message {code}", "data": []}).encode()
    with pytest.raises(OKXAPIError) as info:
        position_parser.parse(raw, status)
    assert type(info.value) is cls
    assert (info.value.code, info.value.msg, info.value.http_status) == (
        code,
        f"message {code}",
        status,
    )
    assert code in str(info.value)


def test_error_answer_with_rows_of_another_shape_still_maps_by_code() -> None:
    raw = b'{"code":"51342","msg":"Closing order already exists","data":[{"sCode":1}]}'
    with pytest.raises(ClosingOrderExistsError):
        close_result_parser.parse(raw, 200)


def test_error_answer_without_data_maps_by_code() -> None:
    with pytest.raises(RateLimitError):
        position_parser.parse(b'{"code":"50011","msg":"Too Many Requests"}', 429)


def test_an_acknowledgement_must_hold_exactly_one_row() -> None:
    for rows in ("[]", "[" + ",".join(['{"algoId":"1"}'] * 2) + "]"):
        raw = f'{{"code":"0","msg":"","data":{rows}}}'.encode()
        with pytest.raises(MalformedResponseError, match="expected one row") as info:
            close_result_parser.parse(raw, 200)
        assert info.value.raw_text == raw.decode()


_DEEP: Final = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "raw",
    [
        b'{"code":"0","msg":"","data":' + _DEEP + b"}",
        b'{"code":"0","msg":"","data":[{"algoId":"1","extra":' + _DEEP + b"}]}",
        b'{"extra":' + _DEEP + b',"code":"0","msg":"","data":[]}',
        b'{"code":"51293","msg":"","data":' + _DEEP + b"}",
        b'{"code":"0","msg":"\xff\xfe","data":[]}',
        b"\xef\xbb\xbf" + POSITIONS,  # a byte order mark
    ],
    ids=["deep-data", "deep-field", "deep-first", "deep-error", "not-utf8", "bom"],
)
@pytest.mark.parametrize("parser", [position_parser, close_result_parser], ids=["get", "post"])
def test_any_decoding_failure_is_a_malformed_response(
    raw: bytes, parser: ResultParser[Any, Any]
) -> None:
    with pytest.raises(MalformedResponseError) as info:
        parser.parse(raw, 200)
    assert len(info.value.raw_text) < 600


def test_a_deep_error_page_is_an_http_status_error() -> None:
    with pytest.raises(HTTPStatusError):
        position_parser.parse(b'{"error":' + _DEEP + b"}", 502)
