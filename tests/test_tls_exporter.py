"""`iotpki.tls_exporter`: the RFC 9266 tls-exporter of a server-side connection equals the
keying material `openssl s_client` exports on the other end (`-keymatexport
EXPORTER-Channel-Binding -keymatexportlen 32`), over an asyncio TLS server like the HTTPS
listener's (ssl.SSLObject over memory BIOs). TLS 1.2 gives none (tls-unique serves there),
and an object that is not an `_ssl._SSLSocket` of the known layout gives none."""

from __future__ import annotations

import asyncio
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from iotpki.tls_exporter import _openssl, _ssl_pointer, tls_exporter
from iotpki.wire.keys import generate_private_key

pytestmark = pytest.mark.interop


def _server_files(directory: Path) -> tuple[Path, Path]:
    key = generate_private_key("ec-p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(now - timedelta(minutes=1))
                   .not_valid_after(now + timedelta(hours=1)).sign(key, hashes.SHA256()))
    cert, key_file = directory / "server.pem", directory / "server.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key_file


async def _exchange(context: ssl.SSLContext, version: str) -> tuple[bytes | None, bytes | None]:
    """(server side value, openssl's keying material) of one connection."""
    seen: list[bytes | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(tls_exporter(writer.get_extra_info("ssl_object")))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}", version, "-keymatexport",
        "EXPORTER-Channel-Binding", "-keymatexportlen", "32", "-nocommands",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    output, _ = await asyncio.wait_for(client.communicate(b""), 30)
    server.close()
    await server.wait_closed()
    found = re.search(rb"Keying material: ([0-9A-F]+)", output)
    return seen[0], bytes.fromhex(found.group(1).decode()) if found else None


def test_rfc9266_tls_exporter_matches_openssl(tmp_path: Path) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_server_files(tmp_path))
    ours, theirs = asyncio.run(_exchange(context, "-tls1_3"))
    assert ours is not None and len(ours) == 32 and ours == theirs
    again, other = asyncio.run(_exchange(context, "-tls1_3"))
    assert again == other and again != ours  # one value per session
    tls12, exported = asyncio.run(_exchange(context, "-tls1_2"))
    assert tls12 is None and exported is not None  # TLS 1.2: tls-unique is the binding


def test_no_pointer_from_an_object_of_another_layout() -> None:
    openssl = _openssl()
    assert openssl is not None  # this CPython's ssl objects have the known layout

    class Impostor:
        context: Any = None

    assert _ssl_pointer(Impostor(), openssl) is None
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO())
    assert _ssl_pointer(plain._sslobj, openssl) is not None  # type: ignore[attr-defined]
    assert tls_exporter(plain) is None  # no handshake: no version, nothing exported
