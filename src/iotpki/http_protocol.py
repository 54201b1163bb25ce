"""uvicorn's httptools protocol with response header names in their canonical casing
(`Content-Type`, `Content-Length`, `Content-Transfer-Encoding`, `WWW-Authenticate`), for
every listener (EST, REST, CMP, OCSP, CRL).

RFC 9110 §5.1 makes field names case-insensitive, but deployed EST and CMP clients compare
them case-sensitively, and uvicorn writes them in lower case (Starlette hands them over in
lower case, and uvicorn lower-cases them again). The status line and header block of each
answer are written by one `transport.write` call of the request's cycle; the cycle's
transport is wrapped so that that one write is re-cased. Values and bodies are untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from iotpki.listener import GuardedHttpToolsProtocol

_SPECIAL = {b"www-authenticate": b"WWW-Authenticate", b"etag": b"ETag",
            b"content-md5": b"Content-MD5", b"x-ssl-client-cert": b"X-SSL-Client-Cert"}


def canonical_name(name: bytes) -> bytes:
    """`content-transfer-encoding` → `Content-Transfer-Encoding` (and the few exceptions)."""
    known = _CACHE.get(name)
    if known is None:
        lower = name.lower()
        known = _SPECIAL.get(lower) or b"-".join(w.capitalize() for w in lower.split(b"-"))
        if len(_CACHE) < 256:  # answers use a few dozen names; never grow without bound
            _CACHE[name] = known
    return known


_CACHE: dict[bytes, bytes] = {}


def canonical_header_block(data: bytes) -> bytes:
    """The status line and header block of an HTTP/1.1 answer with re-cased header names
    (the body, if the same write carries one, is left alone)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data
    lines = data[:end].split(b"\r\n")
    for index in range(1, len(lines)):
        line = lines[index]
        colon = line.find(b":")
        if colon > 0:
            lines[index] = canonical_name(line[:colon]) + line[colon:]
    return b"\r\n".join(lines) + data[end:]


class _HeaderCasingTransport:
    """Delegates to the connection's transport; re-cases the header block of one answer
    (the first write that starts a final, non-1xx, status line)."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._done and bytes(data[:5]) == b"HTTP/":
            chunk = bytes(data)
            self._done = not chunk.startswith(b"HTTP/1.1 1")
            data = canonical_header_block(chunk)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


PROTOCOL_CLASS = "iotpki.http_protocol:CanonicalHeadersProtocol"


class CanonicalHeadersProtocol(GuardedHttpToolsProtocol):
    """The guarded httptools protocol (`iotpki.listener`: timeouts, caps) whose answers carry
    canonically cased header names; the plain-HTTP listener runs it (`PROTOCOL_CLASS`)."""

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not previous:  # not an upgrade
            # The cycle was just made for this request; its task has not run yet.
            self.cycle.transport = _HeaderCasingTransport(  # type: ignore[assignment]
                self.cycle.transport)
