"""Pagination: `limit` plus an opaque `cursor`, one envelope for every list.

The cursor is the position after the last item returned (base64url, not to be parsed by
clients); `next_cursor` is null on the last page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
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


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("p") or not text[1:].isdigit() or len(text) > 20:
            raise ValueError
        position = int(text[1:])
        if position > MAX_POSITION:
            raise ValueError
        return position
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"invalid cursor {cursor!r}: pass a next_cursor as returned") from None


def page_request(
    limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Items per page"),
    cursor: str | None = Query(None, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                               description="next_cursor of the previous page"),
) -> PageRequest:
    return PageRequest(limit=limit, position=decode_cursor(cursor) if cursor else 0)


def keyset_page(records: Sequence[R], page: PageRequest, position: Callable[[R], int | None],
                out: Callable[[R], T]) -> Page[T]:
    """`records` fetched with `limit + 1` after `page.position` in the store's order (keyset
    pagination: the cursor is the last record's position, so a deep page costs what the
    first does)."""
    kept = list(records[:page.limit])
    last = position(kept[-1]) if kept and len(records) > page.limit else None
    return Page[T](items=[out(r) for r in kept], limit=page.limit,
                   next_cursor=encode_cursor(last) if last is not None else None)


def offset_page(items: Sequence[T], page: PageRequest) -> Page[T]:
    """`items` fetched with `limit + 1` from offset `page.position`."""
    more = len(items) > page.limit
    return Page[T](items=list(items[:page.limit]), limit=page.limit,
                   next_cursor=encode_cursor(page.position + page.limit) if more else None)
