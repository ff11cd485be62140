"""Reading an instrument from OKX's public endpoint, once per hour, through its own budget."""

from __future__ import annotations

from yarl import URL

from ._constants import PUBLIC_INSTRUMENTS_PATH
from ._instruments import Instrument, InstrumentCache, check_inst_id, check_inst_type, inst_type_of
from ._limiter import RateLimiter, check_wait_timeout
from ._models import instrument_parser
from ._transport import Transport
from ._validation import check_seconds

__all__ = ["read_instrument"]


async def read_instrument(
    transport: Transport,
    cache: InstrumentCache,
    limiter: RateLimiter,
    inst_id: str,
    inst_type: str | None,
    timeout: float | None,
    wait_timeout: float | None,
) -> Instrument:
    """``inst_id``'s instrument from ``cache``, or read once through ``limiter``.

    The public budget is OKX's per IP and instType: ``limiter`` is keyed by
    (host, instType), never by user.

    Raises:
        TypeError, InvalidArgumentError, ValueError: bad arguments (nothing is sent).
    """
    check_inst_id(inst_id)
    kind = inst_type_of(inst_id) if inst_type is None else check_inst_type(inst_type)
    if timeout is not None:
        check_seconds(timeout, "timeout")
    bound = check_wait_timeout(wait_timeout)
    params = {"instType": kind, "instId": inst_id}
    host = URL(transport.base_url).host or transport.base_url

    async def read() -> Instrument:
        rows = await transport.request(
            "GET",
            PUBLIC_INSTRUMENTS_PATH,
            params,
            instrument_parser,
            timeout=timeout,
            wait_timeout=bound,
            limiter=limiter,
            budget_key=f"{host} {kind}",
        )
        return rows[0]  # the parser guarantees exactly one

    return await cache.get(transport.base_url, inst_id, read)
