"""Stores: where the manager keeps its state (in memory, a SQLite file or PostgreSQL)."""

from __future__ import annotations

import json
from typing import List, Mapping, Optional

from . import _core
from ._handle import ClosingHandle
from ._checks import check_int, check_optional_str, check_str, check_str_map, model_json
from .errors import Aborted, AlreadyExists, NotFound
from .models import Model, Row

__all__ = ["Store", "open_store"]


class Store(ClosingHandle):
    """A handle on an open store. Thread-safe; every call releases the GIL while it runs.

    Rows are models of one kind (see :func:`kasm.models.model_kinds`). ``close()`` drops this
    handle; managers opened on the store keep it open until they close.
    """

    def __init__(self, handle: _core.Store) -> None:
        self._h = handle

    @property
    def backend_name(self) -> str:
        """"memory", "sqlite" or "postgresql"."""
        return self._h.backend_name

    @property
    def schema_version(self) -> int:
        return self._h.schema_version

    def ping(self) -> None:
        """Raises Unavailable when the database cannot be reached."""
        self._h.ping()

    def insert(self, kind: str, value: Model) -> int:
        """Validates and inserts a model; returns its version (1). AlreadyExists on a clash."""
        return self._h.insert(check_str(kind, "kind"), model_json(value, "value"))

    def update(self, kind: str, value: Model, expected_version: int) -> int:
        """Writes a model if it is still at ``expected_version`` (Aborted otherwise)."""
        return self._h.update(
            check_str(kind, "kind"), model_json(value, "value"), check_int(expected_version, "expected_version")
        )

    def upsert(self, kind: str, value: Model, *, retries: int = 8) -> Row:
        """Inserts or replaces a model by id, retrying lost races. Returns the stored row."""
        check_str(kind, "kind")
        body = model_json(value, "value")
        model_id = _model_id(kind, value)
        for _ in range(max(1, retries)):
            try:
                version = self._h.get(kind, model_id)[1]
            except NotFound:
                try:
                    self._h.insert(kind, body)
                except AlreadyExists:  # Another writer inserted first: update instead.
                    continue
            else:
                try:
                    self._h.update(kind, body, version)
                except Aborted:
                    continue
            return self.get(kind, model_id)
        raise Aborted(f"{kind} '{model_id}' kept changing during upsert")

    def get(self, kind: str, id: str) -> Row:
        """The model with this id; NotFound otherwise."""
        text, version = self._h.get(check_str(kind, "kind"), check_str(id, "id"))
        return Row(json.loads(text), version)

    def list(
        self, kind: str, where: Optional[Mapping[str, str]] = None, *, limit: int = 0, after_id: str = ""
    ) -> List[Row]:
        """Models of a kind, ordered by id, filtered on indexed columns (InvalidArgument for others)."""
        rows = self._h.list(
            check_str(kind, "kind"), check_str_map(where, "where"), check_int(limit, "limit"), check_str(after_id, "after_id")
        )
        return [Row(json.loads(text), version) for text, version in rows]

    def remove(self, kind: str, id: str, expected_version: Optional[int] = None) -> None:
        """Removes a model (only at ``expected_version`` when given). NotFound when absent."""
        if expected_version is not None:
            check_int(expected_version, "expected_version")
        self._h.remove(check_str(kind, "kind"), check_str(id, "id"), expected_version)

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.backend_name
        return f"<kasm.Store {state}>"


def _model_id(kind: str, value: Model) -> str:
    key = "key" if kind == "setting" else "id"
    model_id = value.get(key)
    if not isinstance(model_id, str) or not model_id:
        raise TypeError(f"a {kind} needs a non-empty str '{key}' to be upserted")
    return model_id


def open_store(url: str = "memory", *, pool_size: int = 4) -> Store:
    """Opens a store.

    ``"memory"`` keeps everything in process memory; ``"sqlite:///path/kasm.db"`` (or a plain path)
    opens or creates a SQLite file; ``"postgresql://user:pw@host:port/db"`` connects to PostgreSQL
    (``pool_size`` connections). Raises Unavailable, DataLoss or FailedPrecondition as the library
    does.
    """
    check_str(url, "url")
    check_int(pool_size, "pool_size")
    if url in ("memory", "memory:", ":memory:"):
        return Store(_core.open_memory_store())
    if url.startswith(("postgresql://", "postgres://")):
        return Store(_core.open_postgres_store(url, pool_size))
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        return Store(_core.open_sqlite_store(path))
    if "://" in url:
        from .errors import InvalidArgument

        raise InvalidArgument(f"url: unsupported store URL '{url}' (memory, sqlite:///path, postgresql://...)")
    check_optional_str(url, "url")
    return Store(_core.open_sqlite_store(url))
