"""Make each re-exported class and function name the package users import it from.

Everything public is defined in a private module (``okx_grid_async._errors``...)
and re-exported by its package. Setting ``__module__`` to the package, as httpx
and openai-python do, makes tracebacks, reprs and pickles show the public path:
``okx_grid_async.GridNotFoundError``, not ``okx_grid_async._errors.GridNotFoundError``.

A class's string annotations (every module here uses ``from __future__ import
annotations``) are looked up in the module its ``__module__`` names, by
``typing.get_type_hints`` and by msgspec when it decodes into a Struct. The
package does not hold ``Decimal`` or ``datetime``, so each class's annotations
are resolved first, in the module that wrote them.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping

__all__ = ["publish"]


def publish(namespace: Mapping[str, object]) -> None:
    """Set ``__module__`` of every class and function in a package's ``__all__`` to the package.

    ``namespace`` is the package's ``globals()``; constants and dunder names are left alone.

    Raises:
        NameError: a class annotation names something its module does not hold at
            run time (an import under ``TYPE_CHECKING``): it could not be resolved
            after the move either.
    """
    package = typing.cast(str, namespace["__name__"])
    for name in typing.cast(list[str], namespace["__all__"]):
        value = namespace[name]
        if isinstance(value, type):
            _resolve_own_annotations(value)
            value.__module__ = package
        elif inspect.isfunction(value):
            value.__module__ = package


def _resolve_own_annotations(cls: type) -> None:
    """Replace the annotation strings ``cls`` itself declares with the types they name."""
    own = inspect.get_annotations(cls)
    if not own:
        return
    # As msgspec and typing resolve them: through the MRO, each base in the module
    # its __module__ names (a base published already had its own resolved first).
    hints = typing.get_type_hints(cls, include_extras=True)
    cls.__annotations__ = {name: hints[name] for name in own}
