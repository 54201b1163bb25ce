"""The RFC 9483 conformance harness: the demo PKI (one per test module) behind the CMP
routes in process (Starlette's TestClient, no socket), requests built with our encoder
(`wire.cmp.requests`), answers read with pyasn1 and the RFC 9810 module (not our decoder)
so that body type, PKIStatus and the exact PKIFailureInfo bits are checked independently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1.codec.der import decoder, encoder
from pyasn1_alt_modules import rfc9480
from starlette.applications import Starlette

from iotpki.app import PKI, build_pki
from iotpki.cli.demo_setup import create_demo_hierarchy
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.protocols.cmp.routes import MEDIA_TYPE
from iotpki.protocols.cmp.routes import routes as cmp_routes
from iotpki.settings import Settings
from iotpki.wire.cmp.protection import MACProtection, PBMParameters
from iotpki.wire.cmp.requests import (
    KeySignature,
    RequestHeader,
    RequestProtection,
    cert_conf_body,
    encode_cert_req_msg,
    encode_request,
    subject_key_id,
)
from iotpki.wire.cmp.transactions import cert_hash
from iotpki.wire.der import SEQUENCE, read_tlv, tlv
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
FAILURE_NAMES = {bit: name for name, bit in rfc9480.PKIFailureInfo.namedValues.items()}


@dataclass(frozen=True)
class Reply:
    """An answer read with pyasn1 alone: body type, PKIStatus, failInfo bit names."""

    body: str
    status: int | None
    failures: frozenset[str]
    message: Any = field(repr=False)

    def certificate(self) -> x509.Certificate:
        response = self.message["body"][self.body]["response"][0]
        choice = response["certifiedKeyPair"]["certOrEncCert"]["certificate"]
        der = bytes(encoder.encode(choice))
        if der[0] != SEQUENCE:  # [0] EXPLICIT around the certificate
            _, start, end = read_tlv(der, 0)
            der = der[start:end]
        return x509.load_der_x509_certificate(der)

    @property
    def sender_nonce(self) -> bytes:
        return bytes(self.message["header"]["senderNonce"])


def read_reply(der: bytes) -> Reply:
    message, rest = decoder.decode(der, asn1Spec=rfc9480.PKIMessage())
    assert rest == b""
    kind = message["body"].getName()
    content = message["body"][kind]
    info = None
    if kind == "error":
        info = content["pKIStatusInfo"]
    elif kind in ("ip", "cp", "kup"):
        info = content["response"][0]["status"]
    elif kind == "rp":
        info = content["status"][0]
    if info is None:
        return Reply(kind, None, frozenset(), message)
    bits = info["failInfo"]
    failures = frozenset(FAILURE_NAMES[i] for i, bit in enumerate(bits) if bit) \
        if bits.isValue else frozenset()
    return Reply(kind, int(info["status"]), failures, message)


@dataclass
class Identity:
    """A device's certificate issued here, with its key."""

    key: Any
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def header(self, **changes: Any) -> RequestHeader:
        header = RequestHeader(self.certificate.subject,
                               sender_kid=subject_key_id(self.certificate))
        return replace(header, **changes)

    def protection(self) -> KeySignature:
        return KeySignature(self.key)


class Lab:
    """The demo PKI and its CMP routes in process (httpx's ASGI transport, no socket)."""

    def __init__(self, pki: PKI, portal: Any) -> None:
        self.pki = pki
        self._portal = portal
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=Starlette(routes=cmp_routes(pki.cmp))), base_url="http://iotpki.test")

    def post(self, der: bytes, label: str = "") -> Reply:
        path = "/.well-known/cmp" + (f"/p/{label}" if label else "")
        answer = self._portal.call(partial(self._client.post, path, content=der,
                                           headers={"Content-Type": MEDIA_TYPE}))
        assert answer.status_code == 200, answer.text
        return read_reply(answer.content)

    def close(self) -> None:
        self._portal.call(self._client.aclose)

    def registration(self, subject: str = "CN=sensor-7", **changes: Any) -> tuple[str, bytes]:
        spec = RegistrationSpec("operatorco", CA, "operational",
                                RegistrationMethod.ONE_TIME_SECRET,
                                subject=parse_subject(subject), domain=DOMAIN, **changes)
        created = self.pki.registrations.create(spec, "operatorco:crm")
        assert created.secret is not None
        return created.registration.id, created.secret.encode()

    def mac(self, secret: bytes) -> MACProtection:
        return MACProtection(secret, PBMParameters(os.urandom(16), SHA256, 1000, HMAC_SHA256))

    def mac_request(self, kind: str, body: bytes, subject: str = "CN=sensor-7",
                    **header: Any) -> bytes:
        """A request MAC-protected with a fresh registration's secret."""
        reference, secret = self.registration(subject)
        fields = {"sender": parse_subject(subject), "sender_kid": reference.encode(), **header}
        return encode_request(RequestHeader(**fields), kind, body, self.mac(secret), now())

    def enroll(self, subject: str = "CN=sensor-7", key_type: str = "ec-p256") -> Identity:
        """A certificate of this CA for a new key (MAC-protected ir, implicit confirm)."""
        key = generate_private_key(key_type)
        der = self.mac_request("ir", cert_req_messages(key, subject), subject,
                               implicit_confirm=True)
        reply = self.post(der)
        assert reply.body == "ip" and reply.status == 0, reply
        certificate = reply.certificate()
        return Identity(key, certificate, self.pki.authorities.get(CA).full_chain)

    def signed(self, identity: Identity, kind: str, body: bytes,
               protection: RequestProtection | None = None,
               extra: tuple[x509.Certificate, ...] | None = None, **header: Any) -> bytes:
        return encode_request(identity.header(**header), kind, body,
                              protection or identity.protection(), now(),
                              extra if extra is not None
                              else (identity.certificate, *identity.chain))

    def cert_conf(self, reply: Reply, identity_or_secret: Identity | bytes,
                  transaction_id: bytes, certificate: x509.Certificate,
                  sender: x509.Name, sender_kid: bytes | None, body: bytes | None = None,
                  protection: RequestProtection | None = None) -> bytes:
        header = RequestHeader(sender, sender_kid=sender_kid, transaction_id=transaction_id,
                               recip_nonce=reply.sender_nonce)
        if isinstance(identity_or_secret, bytes):
            guard: RequestProtection = protection or self.mac(identity_or_secret)
            extra: tuple[x509.Certificate, ...] = ()
        else:
            guard = protection or identity_or_secret.protection()
            extra = (identity_or_secret.certificate, *identity_or_secret.chain)
        content = body if body is not None else cert_conf_body(cert_hash(certificate, None))
        return encode_request(header, "certConf", content, guard, now(), extra)


def now() -> datetime:
    return datetime.now(UTC)


def cert_req_messages(key: Any, subject: str = "CN=sensor-7") -> bytes:
    """CertReqMessages with one CertReqMsg for `key` (signature POP)."""
    return tlv(SEQUENCE, encode_cert_req_msg(key, parse_subject(subject)))


def new_key() -> ec.EllipticCurvePrivateKey:
    key = generate_private_key("ec-p256")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def build_lab(tmp: Path) -> Iterator[Lab]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IOTPKI_CA_PASSPHRASE", "test passphrase, not a secret")
        settings = Settings(data_dir=tmp / "data", public_url="http://pki.test:8080")
        pki = build_pki(settings)
        try:
            create_demo_hierarchy(pki)
            with anyio.from_thread.start_blocking_portal() as portal:
                lab = Lab(pki, portal)
                yield lab
                lab.close()
        finally:
            pki.close()


def issued_count(lab: Lab) -> int:
    """Certificates issued to clients (not the server's own CMP and OCSP signers)."""
    return sum(1 for e in lab.pki.audit.entries(limit=None)
               if e.record.action == "certificate.issue" and e.record.outcome == "success"
               and e.record.details.get("method") != "internal")


def audit_head(lab: Lab) -> int:
    entries = lab.pki.audit.entries(after=0, limit=None)
    return entries[-1].seq if entries else 0


def refusals_since(lab: Lab, seq: int) -> list[Any]:
    """The refused decisions audited after `seq` (the adapter's `cmp.request`, the core's
    `enrollment.authorize` / `certificate.issue`)."""
    return [e.record for e in lab.pki.audit.entries(after=seq, limit=None)
            if e.record.outcome == "refused"]


def refused(lab: Lab, der: bytes, failure: str, body: str = "error", label: str = "") -> Reply:
    """The request is answered with `body` (error, or ip/cp/kup/rp for a request-level
    refusal), PKIStatus rejection and exactly the `failure` bit; nothing is issued; the
    refusal is audited."""
    issued, seq = issued_count(lab), audit_head(lab)
    reply = lab.post(der, label)
    assert (reply.body, reply.status, reply.failures) == (body, 2, frozenset({failure})), reply
    assert issued_count(lab) == issued
    assert refusals_since(lab, seq), "the refusal was not audited"
    return reply


def crmf(key_or_spki: Any, subject: str = "CN=sensor-7", extensions: bytes = b"",
         popo: bytes | None = None, pop_key: Any = None, cert_req_id: int = 0,
         controls: bytes = b"") -> bytes:
    """CertReqMessages with one CertReqMsg written field by field (RFC 4211 §3, §5):
    `extensions` the DER of Extension elements; `popo` a ProofOfPossession DER, else a
    POPOSigningKey signature by `pop_key` (the new key by default) over certReq."""
    from cryptography.hazmat.primitives import serialization

    from iotpki.wire.cmp.algorithms import signature_algorithm_oid
    from iotpki.wire.der import BIT_STRING, INTEGER
    from iotpki.wire.der import object_identifier as oid
    from iotpki.wire.keys import signature_hash_for
    from iotpki.wire.signature import sign_data
    spki = key_or_spki if isinstance(key_or_spki, bytes) else key_or_spki.public_key(
    ).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    template = tlv(0xA5, parse_subject(subject).public_bytes()) + bytes((0xA6,)) + spki[1:]
    if extensions:
        template += tlv(0xA9, extensions)
    cert_request = tlv(SEQUENCE, tlv(INTEGER, bytes((cert_req_id,))) + tlv(SEQUENCE, template)
                       + (tlv(SEQUENCE, controls) if controls else b""))
    if popo is None:
        signer = pop_key if pop_key is not None else key_or_spki
        algorithm = tlv(SEQUENCE, oid(signature_algorithm_oid(signer)))
        signature = sign_data(signer, cert_request, signature_hash_for(signer))
        popo = tlv(0xA1, algorithm + tlv(BIT_STRING, b"\x00" + signature))
    return tlv(SEQUENCE, tlv(SEQUENCE, cert_request + popo))


def extension(oid_text: str, value: bytes, critical: bool = False) -> bytes:
    from iotpki.wire.der import OCTET_STRING
    from iotpki.wire.der import object_identifier as oid
    return tlv(SEQUENCE, oid(oid_text) + (b"\x01\x01\xff" if critical else b"")
               + tlv(OCTET_STRING, value))


def old_cert_id(certificate: x509.Certificate, serial: int | None = None) -> bytes:
    """The oldCertId control (RFC 4211 §6.5) naming `certificate` (or another serial)."""
    from iotpki.wire.der import INTEGER
    from iotpki.wire.der import object_identifier as oid
    number = serial if serial is not None else certificate.serial_number
    cert_id = tlv(SEQUENCE, tlv(0xA4, certificate.issuer.public_bytes())
                  + tlv(INTEGER, number.to_bytes((number.bit_length() + 8) // 8, "big")))
    return tlv(SEQUENCE, oid("1.3.6.1.5.5.7.5.1.5") + cert_id)


def rr_body(certificate: x509.Certificate, reasons: tuple[int, ...] = (0,),
            serial: int | None = None, subject: x509.Name | None = None,
            spki: bytes | None = None) -> bytes:
    """RevReqContent with one RevDetails (RFC 9483 §4.2): CertTemplate with issuer [3] and
    serialNumber [1], optionally subject [5] and publicKey [6]; one reasonCode per entry of
    `reasons` in crlEntryDetails."""
    number = serial if serial is not None else certificate.serial_number
    template = (tlv(0x81, number.to_bytes((number.bit_length() + 8) // 8, "big"))
                + tlv(0xA3, certificate.issuer.public_bytes()))
    if subject is not None:
        template += tlv(0xA5, subject.public_bytes())
    if spki is not None:
        template += bytes((0xA6,)) + spki[1:]
    entries = b"".join(extension("2.5.29.21", tlv(0x0A, bytes((code,)))) for code in reasons)
    details = tlv(SEQUENCE, template) + (tlv(SEQUENCE, entries) if reasons else b"")
    return tlv(SEQUENCE, tlv(SEQUENCE, details))


def cert_status_body(certificate: x509.Certificate, cert_req_id: int = 0,
                     status: int | None = None, fail_bit: int | None = None,
                     digest: bytes | None = None) -> bytes:
    """CertConfirmContent with one CertStatus (RFC 9483 §4.1.1, RFC 9810 §5.3.18)."""
    from iotpki.wire.der import INTEGER, OCTET_STRING
    info = b""
    if status is not None:
        fail = b""
        if fail_bit is not None:
            octets, unused = fail_bit // 8 + 1, 7 - fail_bit % 8
            bits = bytearray(octets)
            bits[fail_bit // 8] = 0x80 >> (fail_bit % 8)
            fail = tlv(0x03, bytes((unused,)) + bytes(bits))
        info = tlv(SEQUENCE, tlv(INTEGER, bytes((status,))) + fail)
    digest = digest if digest is not None else cert_hash(certificate, None)
    return tlv(SEQUENCE, tlv(SEQUENCE, tlv(OCTET_STRING, digest)
                             + tlv(INTEGER, (cert_req_id & 0xFF).to_bytes(1, "big")) + info))


def huge_rsa_spki(bits: int = 16384) -> bytes:
    """SubjectPublicKeyInfo of an RSA key of `bits` bits (an odd modulus; no private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    modulus = (1 << (bits - 1)) | int.from_bytes(bytes(range(256)) * (bits // 2048), "big") | 1
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
