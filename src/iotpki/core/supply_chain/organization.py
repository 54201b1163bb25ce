"""Organizations: the parties of the supply chain (ChipCo, DeviceCo, OperatorCo...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from iotpki.core.errors import ConfigurationError

LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_label(label: str, what: str) -> str:
    """Labels appear in URLs (`/crl/<label>.crl`): lowercase letters, digits and dashes."""
    if not LABEL.match(label):
        raise ConfigurationError(
            f"invalid {what} label {label!r}: use 1-63 lowercase letters, digits and dashes"
        )
    return label


@dataclass(frozen=True)
class Organization:
    label: str
    name: str
    created_at: datetime

    def __post_init__(self) -> None:
        check_label(self.label, "organization")
