"""Licensing of an installation: what the manager enforces (concurrent sessions, features)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional

from . import _core
from ._checks import check_str
from .models import Model

__all__ = ["LicenseStatus", "Licensing"]


@dataclass(frozen=True)
class LicenseStatus:
    """Where the installation stands; what an admin page shows."""

    state: str  # "community", "valid", "expiring", "expired" or "clock_behind".
    installation_id: str
    type: str  # "concurrent_sessions" or "named_users".
    limit: Optional[int]  # None when unlimited.
    used: int
    sessions_in_use: int
    features: FrozenSet[str]
    valid_until_ms: Optional[int]
    days_left: Optional[int]
    message: str
    customer: str = ""
    problems: List[Dict[str, str]] = field(default_factory=list, compare=False)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "LicenseStatus":
        return cls(**{**d, "features": frozenset(d["features"])})

    @property
    def allows_new_session(self) -> bool:
        """True when one more session fits the limit and the licence is in force."""
        if self.state in ("expired", "clock_behind"):
            return False
        return self.limit is None or self.used < self.limit


class Licensing:
    """The licences of one manager's installation. Obtain it from ``Manager.licensing``."""

    def __init__(self, handle: _core.Licensing) -> None:
        self._h = handle

    def status(self) -> LicenseStatus:
        return LicenseStatus.from_dict(self._h.status())

    def installation_id(self) -> str:
        return self._h.installation_id()

    def add_license(self, armored: str) -> Model:
        """Verifies and stores pasted licence text; InvalidArgument, Unauthenticated or
        FailedPrecondition say why it was refused."""
        return json.loads(self._h.add_license(check_str(armored, "armored")))

    def remove_license(self, license_id: str) -> None:
        self._h.remove_license(check_str(license_id, "license_id"))

    def list_licenses(self) -> List[Model]:
        return [json.loads(t) for t in self._h.list_licenses()]

    def has_feature(self, feature: str) -> bool:
        return check_str(feature, "feature") in self.status().features

    def require_feature(self, feature: str) -> None:
        """PermissionDenied naming the feature when the licence does not include it."""
        self._h.require_feature(check_str(feature, "feature"))
