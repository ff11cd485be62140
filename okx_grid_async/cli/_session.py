"""Running a command's work: its event loop, and its `GridClient` from the environment.

`run` runs a coroutine and turns the error that ends it into its report and exit
code. `with_client` first opens a client from the credentials in the environment
and the connection options: ``--base-url`` (else ``$OKX_BASE_URL``, else OKX's
global host), ``--redis-url`` (else ``$OKX_GRID_REDIS_URL``), the timeouts,
``--metrics``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from okx_grid_async import GLOBAL_URL, Credentials, GridClient, OKXError, RedisRateLimiter
from okx_grid_async._constants import DEFAULT_TIMEOUT
from okx_grid_async._metrics_report import MetricsReport

from ._environment import BASE_URL_VAR, CREDENTIAL_VARS, PROG, REDIS_URL_VAR
from ._exit import EXIT_OUTCOME_UNKNOWN, CommandError, InterruptionError, UsageError
from ._hints import reconcile_advice
from ._output import Output

__all__ = ["interruptible", "run", "with_client"]


def run(out: Output, work: Coroutine[Any, Any, int], *, algo_id: str | None = None) -> int:
    """Run ``work`` in a new event loop; an error ending it becomes its report and exit code.

    ``algo_id`` is the grid the work acts on, named in the error's hint.
    """
    try:
        return asyncio.run(work)
    except (OKXError, CommandError) as exc:
        return out.fail(exc, algo_id=algo_id)


def with_client(
    args: argparse.Namespace,
    out: Output,
    work: Callable[[GridClient], Awaitable[int]],
    *,
    algo_id: str | None = None,
) -> int:
    """Open a GridClient from the environment's credentials and the options; run ``work``.

    ``algo_id`` is the grid the work acts on, named in the error's hint.
    """
    try:
        credentials = Credentials.from_env()
    except ValueError as exc:
        return out.fail(
            UsageError(
                f"{exc}; the API key is read from {', '.join(CREDENTIAL_VARS)} "
                f"('{PROG} simulate' prints demo ones)"
            )
        )
    try:
        # A Redis limiter shares the user's budget with other processes and hosts;
        # without one, only with this process (the default limiter).
        redis_url = args.redis_url or os.environ.get(REDIS_URL_VAR)
        limiter = RedisRateLimiter(redis_url) if redis_url else None
        report = MetricsReport() if args.metrics else None
        client = GridClient(
            credentials,
            base_url=args.base_url or os.environ.get(BASE_URL_VAR) or GLOBAL_URL,
            demo=bool(args.demo_trading),
            user_id=args.user_id,
            timeout=args.timeout or DEFAULT_TIMEOUT,
            wait_timeout=args.wait_timeout,
            rate_limiter=limiter,
            meter_provider=None if report is None else report.meter_provider,
        )
    except (ImportError, TypeError, ValueError) as exc:
        return out.fail(UsageError(str(exc)))

    async def session() -> int:
        try:
            async with client:
                return await work(client)
        finally:
            if report is not None:
                out.note(report.render(client))
            if limiter is not None:
                await limiter.aclose()

    return run(out, session(), algo_id=algo_id)


def interruptible(
    args: argparse.Namespace,
    out: Output,
    work: Callable[[GridClient], Awaitable[int]],
    algo_id: str,
    action: str,
) -> int:
    """`with_client` for a POST: Ctrl-C is an unknown outcome, since the request may have left."""
    try:
        return with_client(args, out, work, algo_id=algo_id)
    except KeyboardInterrupt:
        return out.fail(
            InterruptionError(
                f"interrupted during the {action} of grid {algo_id}",
                exit_code=EXIT_OUTCOME_UNKNOWN,
                hint=reconcile_advice(algo_id, action),
                algo_id=algo_id,
            )
        )
