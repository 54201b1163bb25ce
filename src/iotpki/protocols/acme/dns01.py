"""dns-01 (RFC 8555 §8.4): a TXT record `_acme-challenge.<name>` holding
base64url(SHA-256(key authorization)), asked of the configured resolver
(`IOTPKI_ACME_RESOLVER`, else the first `nameserver` of /etc/resolv.conf). The same
resolver gives http-01 and tls-alpn-01 the address of a name when one is configured.
"""

from __future__ import annotations

import secrets
import socket
import struct
from pathlib import Path

from iotpki.protocols.acme.validation import ChallengeFailed, ChallengeInput
from iotpki.wire.acme.messages import dns01_digest
from iotpki.wire.dns import (
    RCODE_NXDOMAIN,
    TYPE_A,
    TYPE_TXT,
    Answer,
    addresses,
    decode_answer,
    encode_query,
    txt_values,
)
from iotpki.wire.errors import DecodeError

MAX_UDP = 4096


def system_resolver() -> tuple[str, int]:
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1], 53
    except OSError:
        pass
    return "127.0.0.1", 53


class DNSClient:
    def __init__(self, server: tuple[str, int] | None, timeout: float) -> None:
        self._server = server
        self._timeout = timeout

    def query(self, name: str, qtype: int) -> Answer:
        """UDP, then TCP when the answer is truncated (RFC 1035 §4.2)."""
        server = self._server or system_resolver()
        query_id = secrets.randbelow(65536)
        try:
            query = encode_query(name, qtype, query_id)
        except (ValueError, UnicodeEncodeError) as exc:
            raise ChallengeFailed("dns", f"cannot ask for {name!r}: {exc}") from exc
        try:
            answer = decode_answer(self._udp(server, query), query_id)
            if answer.truncated:
                answer = decode_answer(self._tcp(server, query), query_id)
        except OSError as exc:
            raise ChallengeFailed("dns", f"DNS server {server[0]}:{server[1]} did not "
                                         f"answer for {name}: {exc}") from exc
        except DecodeError as exc:
            raise ChallengeFailed("dns", f"malformed DNS answer for {name}: {exc}") from exc
        if answer.rcode not in (0, RCODE_NXDOMAIN):
            raise ChallengeFailed("dns", f"DNS error {answer.rcode} for {name}")
        return answer

    def _udp(self, server: tuple[str, int], query: bytes) -> bytes:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self._timeout)
            sock.connect(server)
            sock.send(query)
            return sock.recv(MAX_UDP)

    def _tcp(self, server: tuple[str, int], query: bytes) -> bytes:
        with socket.create_connection(server, timeout=self._timeout) as sock:
            sock.sendall(struct.pack("!H", len(query)) + query)
            length = struct.unpack("!H", _exactly(sock, 2))[0]
            return _exactly(sock, length)

    def resolve(self, name: str) -> str:
        """The first IPv4 address of `name` (for http-01 and tls-alpn-01)."""
        found = addresses(self.query(name, TYPE_A), name)
        if not found:
            raise ChallengeFailed("dns", f"no address for {name}")
        return found[0]


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


class DNS01:
    def __init__(self, client: DNSClient) -> None:
        self._client = client

    def __call__(self, challenge: ChallengeInput) -> None:
        name = f"_acme-challenge.{challenge.identifier.value}"
        try:
            values = txt_values(self._client.query(name, TYPE_TXT), name)
        except DecodeError as exc:
            raise ChallengeFailed("dns", f"dns-01: malformed TXT record of {name}") from exc
        if dns01_digest(challenge.key_authorization) not in values:
            raise ChallengeFailed("incorrectResponse" if values else "dns",
                                  f"dns-01: no TXT record of {name} holds the digest of the "
                                  "key authorization")
