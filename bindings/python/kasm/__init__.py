"""kasm: container workspace sessions from Python.

    import kasm
    store = kasm.open_store("sqlite:///var/lib/kasm/kasm.db")
    with kasm.Manager(store) as manager:
        manager.upsert_zone({"id": "local", "name": "Local"})
        manager.upsert_workspace({"id": "web", "friendly_name": "Web", "image": "nginx:1", "port": 80,
                                  "protocol": "http"})
        manager.add_docker_agent("local")
        session = manager.request_session("alice", "web")
        print(session.url)

The package is a thin, typed layer over the C++ library (``kasm._core``). Every failure raises a
subclass of :class:`KasmError` named after the library's ErrorCode. See docs/python.md.
"""

from __future__ import annotations

from . import _core
from .client import DeveloperApiClient, HttpError, RestClient
from .errors import (
    Aborted,
    AlreadyExists,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    KasmError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    error_for_code,
)
from .licensing import LicenseStatus, Licensing
from .manager import Manager
from .models import Model, Row, Session, json_schema, model_kinds, normalize
from .store import Store, open_store

__version__: str = _core.version()

__all__ = [
    "__version__",
    "Aborted",
    "AlreadyExists",
    "DataLoss",
    "DeadlineExceeded",
    "DeveloperApiClient",
    "FailedPrecondition",
    "HttpError",
    "InternalError",
    "InvalidArgument",
    "KasmError",
    "LicenseStatus",
    "Licensing",
    "Manager",
    "Model",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RestClient",
    "Row",
    "Session",
    "Store",
    "Unauthenticated",
    "Unavailable",
    "error_for_code",
    "json_schema",
    "model_kinds",
    "normalize",
    "open_store",
]
