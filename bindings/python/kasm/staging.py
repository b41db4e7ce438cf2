"""Staging pools: sessions started ahead of demand so a request is served at once.

A pool is a ``staging_config`` row in the store (workspace, zone, desired count); the manager's
:meth:`~kasm.Manager.tick` launches or expires staged sessions to match it (the licence must include
the ``staging`` feature). This module keeps the rows and sizes pools by time of day.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Iterable, Optional

from ._checks import check_int, check_str
from .models import Row
from .store import Store

__all__ = ["PoolWindow", "desired_for", "set_pool_size", "get_pool_size"]


@dataclass(frozen=True)
class PoolWindow:
    """``desired`` staged sessions from ``start`` (inclusive) to ``end`` (exclusive), local time.
    A window whose end is not after its start wraps past midnight (22:00-06:00)."""

    start: _dt.time
    end: _dt.time
    desired: int

    def contains(self, t: _dt.time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


def desired_for(windows: Iterable[PoolWindow], when: _dt.datetime, default: int = 0) -> int:
    """The desired size at ``when``: the first window that contains its time of day, else ``default``."""
    if not isinstance(when, _dt.datetime):
        raise TypeError(f"when must be a datetime, not {type(when).__name__}")
    t = when.time()
    for w in windows:
        if w.contains(t):
            return w.desired
    return default


def set_pool_size(
    store: Store,
    config_id: str,
    *,
    workspace_id: str,
    zone_id: str,
    desired: int,
    expiration_seconds: int = 3600,
    enabled: bool = True,
) -> Row:
    """Creates or updates the staging pool ``config_id`` with ``desired`` sessions."""
    check_int(desired, "desired")
    value = {
        "id": check_str(config_id, "config_id"),
        "workspace_id": check_str(workspace_id, "workspace_id"),
        "zone_id": check_str(zone_id, "zone_id"),
        "desired": desired,
        "expiration": check_int(expiration_seconds, "expiration_seconds") * 1000,
        "enabled": bool(enabled),
    }
    try:
        current = store.get("staging_config", config_id)
        value["created_at"] = current.value.get("created_at", 0)
    except LookupError:
        pass
    return store.upsert("staging_config", value)


def get_pool_size(store: Store, config_id: str) -> Optional[int]:
    """The desired size of a pool, or None when it does not exist."""
    try:
        return int(store.get("staging_config", check_str(config_id, "config_id")).value["desired"])
    except LookupError:
        return None
