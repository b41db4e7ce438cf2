"""What every wrapper of a closable ``_core`` handle shares: ``closed``, ``close()`` and ``with``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Optional, Type, TypeVar

_Self = TypeVar("_Self", bound="ClosingHandle")


class ClosingHandle:
    """Mixin for classes keeping their ``_core`` object in ``self._h``."""

    _h: Any

    @property
    def closed(self) -> bool:
        return bool(self._h.closed)

    def close(self) -> None:
        """Stops using the object; waits for calls in flight on other threads. Idempotent."""
        self._h.close()

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()
