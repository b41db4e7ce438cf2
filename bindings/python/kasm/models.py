"""Model values on the Python side.

Models cross the C++ boundary in the library's JSON form (kasm/model/json.hpp): field names are the
C++ member names, enums their lowercase names, times Unix milliseconds, durations milliseconds.
Most models are plain dicts in that form; sessions, being what callers inspect most, also come as a
small typed :class:`Session` view.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional

from . import _core

__all__ = ["Model", "Row", "Session", "model_kinds", "normalize", "json_schema"]

Model = Dict[str, Any]
"""A model in the library's JSON form."""


class Row(NamedTuple):
    """A stored model and the version it was read at (pass it back to update it)."""

    value: Model
    version: int


@dataclass(frozen=True)
class Session:
    """A session as the manager reports it. ``data`` holds every field of the JSON form."""

    id: str
    state: str
    user_id: str
    workspace_id: str
    zone_id: Optional[str]
    agent_id: Optional[str]
    upstream: str
    container_id: str
    state_reason: str
    expires_at_ms: Optional[int]
    data: Model = field(repr=False, compare=False)
    # The workspace's protocol ("http", "https", "vnc", ...) when the manager knows it.
    protocol: Optional[str] = field(default=None, compare=False)

    @classmethod
    def from_json(cls, text: str, protocol: Optional[str] = None) -> "Session":
        d = json.loads(text)
        return cls(
            id=d["id"],
            state=d["state"],
            user_id=d.get("user_id", ""),
            workspace_id=d.get("workspace_id", ""),
            zone_id=d.get("zone_id"),
            agent_id=d.get("agent_id"),
            upstream=d.get("upstream", ""),
            container_id=d.get("container_id", ""),
            state_reason=d.get("state_reason", ""),
            expires_at_ms=d.get("expires_at"),
            data=d,
            protocol=protocol,
        )

    @property
    def url(self) -> Optional[str]:
        """Where the session answers directly, when it has an upstream: ``http://host:port/`` for a
        web workspace, ``vnc://host:port`` for a desktop (a VNC client opens it; browsers reach a
        desktop through kasm-server's viewer, the ``kasm_url`` of the developer API)."""
        if not self.upstream:
            return None
        if self.protocol in ("vnc", "rdp", "ssh"):
            return f"{self.protocol}://{self.upstream}"
        scheme = "https" if self.protocol == "https" else "http"
        return f"{scheme}://{self.upstream}/"

    @property
    def is_running(self) -> bool:
        return self.state == "running"


def model_kinds() -> List[str]:
    """The model kinds the store accepts: "workspace", "zone", "agent", "session", ..."""
    return list(_core.model_kinds())


def normalize(kind: str, value: Model) -> Model:
    """Validates a model and fills its defaults; InvalidArgument names the first bad field."""
    from ._checks import check_str, model_json

    return json.loads(_core.normalize_model(check_str(kind, "kind"), model_json(value, kind)))


def json_schema(kind: str) -> Model:
    """The JSON Schema of a model kind's JSON form."""
    from ._checks import check_str

    return json.loads(_core.model_json_schema(check_str(kind, "kind")))
