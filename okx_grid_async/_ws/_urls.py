"""Which business-WebSocket URL a client connects to, from its REST base URL and demo flag."""

from __future__ import annotations

from yarl import URL

from okx_grid_async._constants import WS_BUSINESS_PATH, WS_HOSTS
from okx_grid_async._transport import is_loopback

__all__ = ["default_ws_url", "validate_ws_url"]


def default_ws_url(base_url: str, demo: bool) -> str:
    """OKX's business WebSocket for a (validated) REST ``base_url``.

    The OKX hosts map to their documented WebSocket hosts (global, US, EEA; live or
    demo). Plain http to a loopback host (the simulator) becomes ``ws://`` to the
    same host and port. Any other https host is assumed to serve the WebSocket
    itself, on ``wss://`` and the same port.
    """
    url = URL(base_url)
    host = url.host or ""
    if url.scheme == "http":
        return str(url.with_scheme("ws").with_path(WS_BUSINESS_PATH))
    hosts = WS_HOSTS.get(host.lower())
    if hosts is not None:
        return f"wss://{hosts[1] if demo else hosts[0]}{WS_BUSINESS_PATH}"
    return str(url.with_scheme("wss").with_path(WS_BUSINESS_PATH))


def validate_ws_url(ws_url: object) -> str:
    """``ws_url`` if it is ``wss://``, or plain ``ws://`` to a loopback host.

    Raises:
        TypeError: if it is not a str.
        ValueError: for another scheme, no host, or ``ws://`` to a non-loopback host
            (the login's passphrase and sign would cross the network in clear).
    """
    if not isinstance(ws_url, str):
        raise TypeError(f"ws_url must be a str, not {type(ws_url).__name__}")
    url = URL(ws_url)
    if url.scheme not in ("wss", "ws") or not url.host:
        raise ValueError(f"ws_url must be a wss:// URL with a host, not {ws_url!r}")
    if url.user or url.fragment:
        raise ValueError(f"ws_url must not carry user info or a fragment: {ws_url!r}")
    if url.scheme == "ws" and not is_loopback(url.host):
        raise ValueError(
            f"ws_url {ws_url!r}: plain ws:// is allowed only to a loopback host "
            "(the simulator); use wss://"
        )
    return ws_url
