"""How long CRLs are valid and how often they are issued (RFC 5280 §5.1.2.4-§5.1.2.5):
the operator's settings, read before any CRL machinery is built."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from iotpki.core.errors import ConfigurationError


@dataclass(frozen=True)
class CRLPolicy:
    """How long CRLs are valid and how often they are issued."""

    # nextUpdate - thisUpdate (§5.1.2.5: the date by which the next CRL will be issued): the
    # interval plus a margin for a node or a cache that is late, so that a relying party
    # never keeps a CRL longer than we promise to replace it.
    full_validity: timedelta = timedelta(hours=26)
    full_interval: timedelta = timedelta(days=1)  # a new full CRL at least this often
    delta_validity: timedelta = timedelta(hours=3)
    delta_interval: timedelta = timedelta(hours=1)  # a new delta at least this often
    debounce: timedelta = timedelta(seconds=2)  # at most one delta per window after changes
    # After a revocation or hold, a new full CRL lists it within this delay (debounced: at
    # most one full CRL per window), for relying parties that read no delta CRL.
    full_after_change: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.full_interval >= self.full_validity or self.delta_interval >= self.delta_validity:
            raise ConfigurationError("CRLs must be re-issued before their nextUpdate")
        if self.full_after_change > self.full_interval:
            raise ConfigurationError("the full CRL after a change (IOTPKI_CRL_FULL_AFTER_CHANGE) "
                                     "must not come later than the full CRL interval "
                                     "(IOTPKI_CRL_INTERVAL)")


_DELAY = re.compile(r"^\s*(\d+)\s*([sm])\s*$")


def parse_delay(text: str) -> timedelta:
    """A duration as in profiles (`24h`, `7d`), or a short delay (`30s`, `2m`, `0s`)."""
    match = _DELAY.match(text)
    if match is None:
        from iotpki.core.ca.profile import parse_duration  # profiles' syntax (cryptography)

        return parse_duration(text)
    return int(match.group(1)) * timedelta(seconds=1 if match.group(2) == "s" else 60)
