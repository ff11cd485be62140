"""Shared fixtures: a real simulator on 127.0.0.1, an account on it, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from okx_grid_async import Credentials, GridClient, LocalRateLimiter
from okx_grid_async._shared import forget_shared_state
from okx_grid_async.simulator import GridSimulator, SimAccount

from .cli_runner import clean_environment, cli  # noqa: F401  (fixtures for every module)
from .redis_server import closed_port, redis_url  # noqa: F401  (fixtures for every module)

ClientFactory = Callable[..., GridClient]


@pytest.fixture(autouse=True)
def _fresh_process_state() -> None:
    """Each test's simulator may reuse an earlier one's port: forget what was learnt of it."""
    forget_shared_state()


@pytest.fixture
async def sim() -> AsyncIterator[GridSimulator]:
    async with GridSimulator(seed=7) as simulator:
        yield simulator


@pytest.fixture
def account(sim: GridSimulator) -> SimAccount:
    return sim.add_account()


@pytest.fixture
def creds(account: SimAccount) -> Credentials:
    return Credentials(account.api_key, account.secret_key, account.passphrase)


@pytest.fixture
def make_client(sim: GridSimulator, account: SimAccount, creds: Credentials) -> ClientFactory:
    """GridClient for the simulator's account, with its own limiter unless one is given."""

    def make(**overrides: Any) -> GridClient:
        options: dict[str, Any] = {
            "base_url": sim.url,
            "user_id": account.user_id,
            "rate_limiter": LocalRateLimiter(),
            "timeout": 5.0,
        }
        options.update(overrides)
        credentials = options.pop("credentials", creds)
        return GridClient(credentials, **options)

    return make
