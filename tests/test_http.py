"""Telling a reused connection from a new one: the arrival model credits only reused ones."""

from __future__ import annotations

import gc

from okx_grid_async._http import Connections


class _Protocol:
    """Stands for aiohttp's protocol object, one per TCP connection."""


def test_a_connection_counts_as_reused_from_its_second_request_on() -> None:
    connections = Connections()
    first, second = _Protocol(), _Protocol()
    assert not connections.reused(first)
    assert connections.reused(first)  # the last one, checked first
    assert not connections.reused(second)
    assert connections.reused(first)  # not the last one any more: remembered all the same
    assert connections.reused(second)
    assert len(connections) == 2


def test_a_closed_connection_is_forgotten() -> None:
    connections = Connections()
    protocol = _Protocol()
    connections.reused(protocol)
    del protocol
    gc.collect()
    assert len(connections) == 0
    assert not connections.reused(_Protocol())
