"""Where a command's results and errors go, redacted.

Results: a table or text on stdout (`_render.to_text`), or with ``--json`` one
JSON document (Decimals as strings, times ISO 8601). Errors: ``okx-grid: error:
...`` and ``okx-grid: hint: ...`` lines on stderr, and with ``--json`` also
``{"error": {...}}`` on stdout, with the error's ``type``. Everything written
has the secrets replaced by ``***``: results are never wrapped, so no secret is
split over two lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, TextIO

import msgspec
from rich.console import RenderableType

from okx_grid_async import OKXAPIError, OKXError, OutcomeUnknownError
from okx_grid_async._redaction import redact

from ._environment import PROG
from ._exit import EXIT_USAGE, CommandError, exit_code_for
from ._hints import hint_for, reconcile_advice
from ._render import to_text

__all__ = ["Output", "error_info"]


def error_info(error: BaseException) -> dict[str, object]:
    """An error as JSON: its type, message, and OKX's code or the request in doubt."""
    info: dict[str, object] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, OKXAPIError):
        info["code"] = error.code
        info["http_status"] = error.http_status
    if isinstance(error, OutcomeUnknownError):
        info["algo_id"] = error.algo_id
        info["request"] = error.request
        info["advice"] = hint_for(error)
    if isinstance(error, CommandError) and error.algo_id is not None:
        info["algo_id"] = error.algo_id
        info["advice"] = error.hint or reconcile_advice(error.algo_id)
    return info


def _enc_hook(value: object) -> object:
    if isinstance(value, BaseException):
        return error_info(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_ENCODER: Final = msgspec.json.Encoder(enc_hook=_enc_hook)


class Output:
    """A run's stdout and stderr, with ``--json`` or not, and the secrets never to show."""

    __slots__ = ("_secrets", "json", "stderr", "stdout")

    def __init__(
        self, *, json: bool, stdout: TextIO, stderr: TextIO, secrets: Iterable[str] = ()
    ) -> None:
        self.json = json
        self.stdout = stdout
        self.stderr = stderr
        self._secrets = tuple(secrets)

    def showing(self, *public: str) -> Output:
        """This output, minus the secrets in ``public`` (the simulator's demo credentials)."""
        kept = [s for s in self._secrets if s not in public]
        return Output(json=self.json, stdout=self.stdout, stderr=self.stderr, secrets=kept)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        return redact(text, self._secrets)

    def __repr__(self) -> str:
        return f"Output(json={self.json}, secrets={len(self._secrets)} hidden)"

    def result(self, value: object, render: Callable[[], RenderableType]) -> None:
        """``value`` as JSON with ``--json``, else what ``render`` draws."""
        if self.json:
            self._write(self.stdout, _ENCODER.encode(value).decode() + "\n")
        else:
            self._write(self.stdout, to_text(render(), terminal=self.stdout.isatty()))

    def note(self, text: str) -> None:
        """A line for the person at the terminal (stderr): not part of the result."""
        self._write(self.stderr, f"{PROG}: {text}\n")

    def report(
        self, error: OKXError | CommandError, *, algo_id: str | None = None, prefix: str = ""
    ) -> None:
        """``error`` and its hint on stderr (only), the message after ``prefix``.

        ``algo_id`` is the grid the command acted on, named in the hint.
        """
        self._write(self.stderr, f"{PROG}: error: {prefix}{error}\n")
        hint = hint_for(error, algo_id or "ALGO_ID")
        if hint:
            self._write(self.stderr, f"{PROG}: hint: {hint}\n")

    def fail(self, error: OKXError | CommandError, *, algo_id: str | None = None) -> int:
        """Report ``error`` (also as ``{"error": ...}`` with ``--json``); returns its exit code.

        ``algo_id`` is the grid the command acted on, named in the hint.
        """
        self.report(error, algo_id=algo_id)
        if self.json:
            self._write(self.stdout, _ENCODER.encode({"error": error}).decode() + "\n")
        return exit_code_for(error)

    def refuse(self, usage: str, message: str) -> int:
        """A mistake in the command line itself: the usage and the message on stderr only.

        No JSON: the parser may have stopped before ``--json``. Returns 2.
        """
        self._write(self.stderr, f"{usage}{PROG}: error: {message}\n")
        return EXIT_USAGE

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(self.redact(text))
        stream.flush()
