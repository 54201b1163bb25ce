"""`iotpki.http_protocol`: canonical header-name casing of uvicorn answers (RFC 9110 §5.1
allows any case; deployed EST/CMP clients compare case-sensitively)."""

from __future__ import annotations

from iotpki.http_protocol import _HeaderCasingTransport, canonical_header_block, canonical_name


def test_canonical_names() -> None:
    assert canonical_name(b"content-type") == b"Content-Type"
    assert canonical_name(b"content-transfer-encoding") == b"Content-Transfer-Encoding"
    assert canonical_name(b"www-authenticate") == b"WWW-Authenticate"
    assert canonical_name(b"etag") == b"ETag"
    assert canonical_name(b"retry-after") == b"Retry-After"


def test_only_names_change() -> None:
    block = (b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Basic realm=\"a: b\"\r\n"
             b"content-length: 5\r\n\r\nbody: stays")
    assert canonical_header_block(block) == (
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"a: b\"\r\n"
        b"Content-Length: 5\r\n\r\nbody: stays")


class _Sink:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))


def test_one_final_header_block_per_answer() -> None:
    """A 100 Continue goes first; the final answer's block is re-cased, body writes that look
    like a status line are not."""
    sink = _Sink()
    transport = _HeaderCasingTransport(sink)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: looks like a header\r\n\r\n")
    assert sink.written == [b"HTTP/1.1 100 Continue\r\n\r\n",
                            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                            b"HTTP/1.1 200 OK\r\ncontent-type: looks like a header\r\n\r\n"]
