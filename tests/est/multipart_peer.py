"""A strict third-party reader of `multipart/mixed` bodies: python-multipart's
`MultipartParser` (the streaming parser Starlette and FastAPI use), which only knows a
delimiter as CRLF "--" boundary (RFC 2046 §5.1.1). Our own decoder is lenient on purpose
and so proves nothing about the framing; this one fails on a bare LF before a delimiter."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

LINE = 64


@dataclass
class Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytes = b""

    def header(self, name: bytes) -> bytes:
        return next(v for n, v in self.headers if n == name)


def strict_parts(content_type: str, body: bytes) -> list[Part]:
    """The parts as python-multipart reads them; the close delimiter must be reached."""
    media, options = parse_options_header(content_type)
    assert media == b"multipart/mixed", content_type
    parts: list[Part] = []
    names: list[bytes] = []
    ended: list[bool] = []

    def header_value(data: bytes, start: int, end: int) -> None:
        parts[-1].headers.append((names.pop(), data[start:end]))

    def part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    parser = MultipartParser(options[b"boundary"], callbacks={
        "on_part_begin": lambda: parts.append(Part()),
        "on_header_field": lambda data, start, end: names.append(data[start:end]),
        "on_header_value": header_value, "on_part_data": part_data,
        "on_end": lambda: ended.append(True)})
    parser.write(body)
    parser.finalize()
    assert ended, "the close delimiter (CRLF --boundary--) was never found"
    return parts


def base64_content(part: Part) -> bytes:
    """The DER of a base64 part whose lines are CRLF-separated and 64 characters long
    (the last one shorter); a bare CR or LF anywhere fails."""
    lines = part.data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines), part.data
    assert all(len(line) == LINE for line in lines[:-1]), lines
    assert 0 < len(lines[-1]) <= LINE, lines
    return base64.b64decode(b"".join(lines), validate=True)
