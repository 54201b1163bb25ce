"""Which CRL shard a certificate belongs to (RFC 5280 §5.2.5 issuingDistributionPoint,
§4.2.1.13 cRLDistributionPoints).

A sharded authority splits its CRL by expiry window: a certificate belongs to the shard
`floor(notAfter / window)` (POSIX seconds), chosen when it is issued, named in its CDP
(`PublicURLs.crl(label, shard)`) and stored with it. Why notAfter:

- a shard holds the certificates issued during one window's worth of time, so its size
  follows the issuance rate and the window, never the CA's total size;
- every certificate of a shard expires within the same window, so once that window has
  passed the whole shard is expired and its CRLs are no longer published (RFC 5280 §3.3:
  an expired certificate need not be listed); old shards empty on their own, with no
  re-sharding and no certificate ever moving between scopes;
- it is known before the certificate is signed (the CDP is inside the signature) and does
  not depend on anything another node could change meanwhile (no counter to lock).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from iotpki.core.errors import ConfigurationError

# Shorter windows make many tiny shards, and a relying party one more CRL to fetch per
# window; a shard under an hour is never useful.
MIN_WINDOW = timedelta(hours=1)


def check_window(window: timedelta) -> timedelta:
    if window < MIN_WINDOW or window.total_seconds() != int(window.total_seconds()):
        raise ConfigurationError(f"a CRL shard window must be whole seconds and at least "
                                 f"{MIN_WINDOW}, not {window}")
    return window


def crl_shard_of(not_after: datetime, window: timedelta) -> int:
    """The shard of a certificate expiring at `not_after`."""
    return int(not_after.timestamp()) // int(window.total_seconds())


def shard_expires_at(shard: int, window: timedelta) -> datetime:
    """The end of the shard's window: every certificate in it has expired by then."""
    return datetime.fromtimestamp((shard + 1) * int(window.total_seconds()), UTC)
