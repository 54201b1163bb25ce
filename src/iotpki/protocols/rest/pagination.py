"""Pagination: `limit` plus an opaque `cursor`, one envelope for every list.

The cursor is the position after the last item returned (base64url, not to be parsed by
clients); `next_cursor` is null on the last page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

T = TypeVar("T")
R = TypeVar("R")
MAX_LIMIT = 1000
MAX_POSITION = (1 << 63) - 1  # a signed 64-bit column: SQLite and PostgreSQL refuse more


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                                "the end")
    limit: int


class PageRequest(BaseModel):
    limit: int
    position: int  # the last position seen (keyset: certificates, audit), or an offset
    # The last (created_at, id) seen: keyset pages of devices and registrations.
    key: tuple[datetime, str] | None = None


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def encode_key_cursor(created_at: datetime, item_id: str) -> str:
    """A keyset cursor of a list ordered by (created_at, id)."""
    text = f"k{created_at.isoformat()}|{item_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_key_cursor(text: str) -> tuple[datetime, str]:
    moment, _, item_id = text[1:].partition("|")
    created_at = datetime.fromisoformat(moment)
    if created_at.tzinfo is None or not item_id or len(item_id) > 36:
        raise ValueError
    return created_at, item_id


def decode_cursor(cursor: str) -> int:
    return _decode(cursor)[0]


def _decode(cursor: str) -> tuple[int, tuple[datetime, str] | None]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("k"):
            return 0, decode_key_cursor(text)
        if not text.startswith("p") or not text[1:].isdigit() or len(text) > 20:
            raise ValueError
        position = int(text[1:])
        if position > MAX_POSITION:
            raise ValueError
        return position, None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"invalid cursor {cursor!r}: pass a next_cursor as returned") from None


def page_request(
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Items per page"),
    cursor: str | None = Query(None, max_length=128, pattern=r"^[A-Za-z0-9_-]+$",
                               description="next_cursor of the previous page"),
) -> PageRequest:
    position, key = _decode(cursor) if cursor else (0, None)
    return PageRequest(limit=limit, position=position, key=key)


def keyset_page(records: Sequence[R], page: PageRequest, position: Callable[[R], int | None],
                out: Callable[[R], T]) -> Page[T]:
    """`records` fetched with `limit + 1` after `page.position` in the store's order (keyset
    pagination: the cursor is the last record's position, so a deep page costs what the
    first does)."""
    kept = list(records[:page.limit])
    last = position(kept[-1]) if kept and len(records) > page.limit else None
    return Page[T](items=[out(r) for r in kept], limit=page.limit,
                   next_cursor=encode_cursor(last) if last is not None else None)


def created_page(records: Sequence[R], page: PageRequest,
                 key: Callable[[R], tuple[datetime, str]], out: Callable[[R], T]) -> Page[T]:
    """`records` fetched with `limit + 1` after `page.key` in (created_at, id) order."""
    kept = list(records[:page.limit])
    more = bool(kept) and len(records) > page.limit
    return Page[T](items=[out(r) for r in kept], limit=page.limit,
                   next_cursor=encode_key_cursor(*key(kept[-1])) if more else None)


def offset_page(items: Sequence[T], page: PageRequest) -> Page[T]:
    """`items` fetched with `limit + 1` from offset `page.position`."""
    more = len(items) > page.limit
    return Page[T](items=list(items[:page.limit]), limit=page.limit,
                   next_cursor=encode_cursor(page.position + page.limit) if more else None)
