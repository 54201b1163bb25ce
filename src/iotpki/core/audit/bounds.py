"""Bounded fields: nothing a client sends is logged, audited or stored at any length.

A field longer than its limit keeps its first `limit` characters, then a marker naming
the original length and the SHA-256 of the whole value, so that two different long
values stay distinguishable in the audit log and an operator can match a value a client
reports against the entry (docs/security.md, "Limits").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

FIELD_LIMIT = 1024  # characters of one client-supplied text field that are kept
ITEMS_LIMIT = 100  # entries of one list or mapping inside audit details or event payloads
DEPTH_LIMIT = 8  # nesting of lists and mappings kept in audit details and event payloads


def bounded(text: str, limit: int = FIELD_LIMIT) -> str:
    """`text` itself when short enough, else its head plus a marker with length and digest."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[:limit]}…[truncated: {len(text)} characters, sha256:{digest}]"


def bounded_bytes(data: bytes, limit: int = FIELD_LIMIT) -> bytes:
    """Raw bytes (for example a CMP senderKID) with the same marker when too long."""
    if len(data) <= limit:
        return data
    digest = hashlib.sha256(data).hexdigest()
    return data[:limit] + f"…[truncated: {len(data)} bytes, sha256:{digest}]".encode()


def bounded_value(value: Any, depth: int = 0) -> Any:
    """A JSON-like value with every string bounded, long collections cut and deep nesting
    replaced by a marker; small values come back unchanged (the same object)."""
    if isinstance(value, str):
        return bounded(value)
    if isinstance(value, Mapping):
        return _bounded_mapping(value, depth)
    if isinstance(value, list | tuple):
        return _bounded_list(value, depth)
    if isinstance(value, bytes):
        return bounded_bytes(value)
    return value


def _bounded_mapping(value: Mapping[Any, Any], depth: int) -> Any:
    if depth >= DEPTH_LIMIT:
        return "…[truncated: nested too deep]"
    items = list(value.items())
    kept = {bounded_value(k, depth + 1): bounded_value(v, depth + 1)
            for k, v in items[:ITEMS_LIMIT]}
    if len(items) > ITEMS_LIMIT:
        kept["…"] = f"[truncated: {len(items)} entries]"
    return kept


def _bounded_list(value: list[Any] | tuple[Any, ...], depth: int) -> Any:
    if depth >= DEPTH_LIMIT:
        return "…[truncated: nested too deep]"
    kept = [bounded_value(v, depth + 1) for v in value[:ITEMS_LIMIT]]
    if len(value) > ITEMS_LIMIT:
        kept.append(f"…[truncated: {len(value)} entries]")
    return tuple(kept) if isinstance(value, tuple) else kept
