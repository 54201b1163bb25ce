"""Reading a centrally generated key out of a CMP answer with real peers: pyasn1 (not our
codec) finds CertifiedKeyPair.privateKey, `openssl cms -decrypt` opens the EnvelopedData,
`openssl cms -verify` checks the SignedData, `openssl asn1parse` reads the key package."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc9480

from iotpki.wire.cms_envelope import ID_ENVELOPED_DATA, ID_SIGNED_DATA, content_info
from iotpki.wire.der import read_tlv


def certified_key_pair(answer: bytes) -> tuple[x509.Certificate, bytes]:
    """(issued certificate, DER of the EnvelopedData) of an ip/cp/kup."""
    message, _ = decoder.decode(answer, asn1Spec=rfc9480.PKIMessage())
    body = message["body"]
    kind = body.getName()
    assert kind in ("ip", "cp", "kup"), kind
    response = body[kind]["response"][0]
    assert int(response["status"]["status"]) == 0, response["status"].prettyPrint()
    pair = response["certifiedKeyPair"]
    tagged = bytes(encoder.encode(pair["certOrEncCert"]["certificate"]))  # [0] EXPLICIT
    _, start, end = read_tlv(tagged, 0)
    certificate = x509.load_der_x509_certificate(tagged[start:end])
    enveloped = pair["privateKey"]["envelopedData"]
    # [0] IMPLICIT EnvelopedData: re-tag as the plain SEQUENCE for a ContentInfo.
    der = bytes(encoder.encode(enveloped))
    return certificate, b"\x30" + der[1:]


def openssl(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def open_key_delivery(directory: Path, enveloped: bytes, decrypt_args: list[str],
                      trusted: Path) -> Any:
    """The private key inside, after openssl decrypted and verified it."""
    (directory / "key.env").write_bytes(content_info(ID_ENVELOPED_DATA, enveloped))
    openssl(directory, "cms", "-decrypt", "-inform", "DER", "-in", "key.env", "-out", "key.sd",
            *decrypt_args)
    (directory / "key.p7").write_bytes(content_info(ID_SIGNED_DATA,
                                                    (directory / "key.sd").read_bytes()))
    verified = openssl(directory, "cms", "-verify", "-inform", "DER", "-in", "key.p7",
                       "-CAfile", str(trusted), "-purpose", "any", "-out", "key.akp")
    assert "Verification successful" in verified.stderr
    listing = openssl(directory, "cms", "-cmsout", "-print", "-inform", "DER", "-in", "key.p7").stdout
    assert "id-ct-KP-aKeyPackage" in listing or "2.16.840.1.101.2.1.2.78.5" in listing
    parsed = openssl(directory, "asn1parse", "-inform", "DER", "-in", "key.akp").stdout
    first_key_offset = int(parsed.splitlines()[1].split(":")[0])  # OneAsymmetricKey
    package = (directory / "key.akp").read_bytes()
    return serialization.load_der_private_key(package[first_key_offset:], None)


def same_key(private_key: Any, certificate: x509.Certificate) -> bool:
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(private_key.public_key().public_bytes(serialization.Encoding.DER, public)
                == certificate.public_key().public_bytes(serialization.Encoding.DER, public))
