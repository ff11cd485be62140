"""A real, throw-away ``redis-server`` for the tests, and the ``redis_url`` fixture.

The server listens on a free port of 127.0.0.1 only, keeps nothing on disk
(``--save "" --appendonly no``, a temporary directory) and is stopped at the end
of the session. Without ``redis-server`` the fixture skips, unless
``OKX_GRID_REQUIRE_REDIS=1`` (set by ``make test`` and CI), where it fails.

Use it from a test module with ``pytest_plugins = ["tests.redis_server"]``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import pytest

__all__ = ["RedisServer", "closed_port", "free_port", "redis_url"]

REQUIRE_ENV: Final = "OKX_GRID_REQUIRE_REDIS"
_START_TIMEOUT: Final = 10.0
_STOP_TIMEOUT: Final = 10.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (nothing listens on it now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, started and stopped as a context manager.

    Raises (on entering):
        RuntimeError: if the server exits or does not answer PING within 10 s.
    """

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING (a taken port is retried)."""
        self._dir = tempfile.TemporaryDirectory(prefix="okx-grid-redis-")
        for _ in range(3):
            self.port = free_port()
            if self._launch(Path(self._dir.name)):
                return
        log = self._log()
        self.stop()
        raise RuntimeError(f"redis-server did not start; its log ends with:\n{log}")

    def _launch(self, directory: Path) -> bool:
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1"]
        arguments += ["--save", "", "--appendonly", "no"]
        arguments += ["--dir", str(directory), "--logfile", str(directory / "redis.log")]
        self._process = subprocess.Popen(
            [self.executable, *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None  # exited (the port was taken, say): try another
                return False
            if _pings(self.port):
                return True
            time.sleep(0.02)
        self._terminate()
        return False

    def restart(self) -> None:
        """Stop the server and start a new one on the same port, with nothing kept.

        As a Redis without persistence comes back from a crash or a restart: every
        key is gone and its ``run_id`` is new; clients reconnect to the same address.

        Raises:
            RuntimeError: if the new server does not answer PING within 10 s.
        """
        assert self._dir is not None, "restart() a server that was never started"
        self._terminate()
        for _ in range(50):  # the old socket may linger a moment
            if self._launch(Path(self._dir.name)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server did not restart; its log ends with:\n{self._log()}")

    def _log(self) -> str:
        if self._dir is None:
            return ""
        try:
            lines = (Path(self._dir.name) / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-10:])

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop the server (terminate, then wait) and remove its directory. Idempotent."""
        self._terminate()
        directory, self._dir = self._dir, None
        if directory is not None:
            directory.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a redis-server running for the whole test session.

    Skips when ``redis-server`` is not installed, or fails when
    ``OKX_GRID_REQUIRE_REDIS=1``.
    """
    executable = shutil.which("redis-server")
    if executable is None:
        message = (
            "redis-server is not installed: the Redis rate-limiter tests need it "
            "(`make test` installs it; or `apt-get install redis-server`)"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires them to run", pytrace=False)
        pytest.skip(message)
    with RedisServer(executable) as server:
        yield server.url


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 where nothing listens: connecting is refused (a server that is down).

    The one helper for it: conftest.py gives it to every test module.
    """
    return free_port()
