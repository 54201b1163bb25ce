"""What each fuzz run sends: valid seeds of the target's messages, mutated (`harness.mutate`).

- est: simpleenroll, simplereenroll, serverkeygen bodies (base64 of a mutated PKCS #10, or a
  mutated base64 text), media types, Basic credentials, labels (RFC 7030 §3.2.2, §4);
- ocsp: POST bodies and GET paths (RFC 6960 Appendix A) from single, multiple and nonce
  requests, mutated;
- crl: GET of full and delta CRLs and CA certificates with mutated labels, methods and
  conditional-request headers (RFC 7232);
- rest: authenticated and unauthenticated requests to every route with mutated JSON bodies,
  query strings and path parameters;
- manifest: `POST /api/v1/manifests/import` with a mutated CMS SignedData manifest;
- scep: PKIOperation (RFC 8894 §3.3) over POST and GET: PKCSReq, CertPoll, GetCert and
  GetCRL messages mutated byte by byte, or with a mutated content behind a valid envelope
  and signature, so that mutated PKCS #10 and IssuerAndSerialNumber reach the server.
- cmc: `POST /cmc` (RFC 5273) Full PKI Requests (identity-proof enrollment, renewal and
  revokeRequest signed by a current certificate, queryPending; DER and BER) mutated byte by
  byte, or a mutated PKIData signed correctly by a current certificate.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from fuzz.harness import Answer, Request, mutate
from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.integration.principal import Role
from iotpki.core.outcomes import Issued
from iotpki.core.ra.registration import RegistrationMethod
from iotpki.core.ra.registration_service import RegistrationSpec
from iotpki.wire.keys import generate_private_key
from iotpki.wire.names import parse_subject

CA = "operatorco-operations"
DOMAIN = "building-42.operator.example"
Inputs = Callable[[PKI, random.Random], Iterator[Request]]


def _csr(common_name: str, san: bool = True, key_type: str = "ec-p256", key: Any = None) -> bytes:
    key = key or generate_private_key(key_type)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(f"urn:iotpki:domain:{DOMAIN}")]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _issued(pki: PKI, name: str, authority: str = CA, profile: str = "operational"
            ) -> tuple[x509.Certificate, x509.Certificate]:
    outcome = pki.issuance.issue(IssuanceRequest(authority, profile, _csr(name), "fuzz"))
    assert isinstance(outcome, Issued)
    return outcome.certificate, pki.authorities.get(authority).certificate


def _basic(user: str, secret: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{secret}".encode())


def _client(rng: random.Random) -> str:
    return f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"


# -- EST ---------------------------------------------------------------------------------------

def est_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    seeds = [_csr("sensor-9"), _csr("sensor-9", san=False), _csr("x", key_type="rsa-2048")]
    texts = [base64.b64encode(s) for s in seeds] + [
        b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(seeds[0])
        + b"-----END CERTIFICATE REQUEST-----\n"]
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject("CN=sensor-9"), domain=DOMAIN), "fuzz")
    assert created.secret is not None
    user, secret = created.registration.id, created.secret
    operations = ["simpleenroll", "simplereenroll", "serverkeygen", "csrattrs", "cacerts",
                  "fullcmc", "unknown"]
    while True:
        operation = rng.choice(operations)
        label = rng.choice([""] * 8 + ["devices/", "nope/", "%00/", "a" * 300 + "/"])
        if rng.random() < 0.5:
            body = base64.b64encode(mutate(rng.choice(seeds), rng, seeds))
        else:
            body = mutate(rng.choice(texts), rng, texts)
        headers = [(b"content-type", rng.choice([b"application/pkcs10"] * 6 + [
            b"application/PKCS10; charset=x", b"text/plain", b"", b"\xff"]))]
        credentials = rng.random()
        if credentials < 0.5:
            headers.append((b"authorization", _basic(user, secret if rng.random() < 0.7 else "x")))
        elif credentials < 0.8:
            headers.append((b"authorization", mutate(_basic(user, secret), rng)))
        method = "GET" if operation in ("csrattrs", "cacerts") and rng.random() < 0.8 else "POST"
        yield Request(method, f"/.well-known/est/{label}{operation}", body, headers,
                      client=_client(rng))


# -- OCSP --------------------------------------------------------------------------------------

def ocsp_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    leaf, issuer = _issued(pki, "ocsp-fuzz")
    other, _ = _issued(pki, "ocsp-fuzz-2")
    single = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1())
    seeds = [single.build().public_bytes(serialization.Encoding.DER),
             single.add_extension(x509.OCSPNonce(b"\x01" * 16), False).build()
             .public_bytes(serialization.Encoding.DER),
             ocsp.OCSPRequestBuilder().add_certificate(other, issuer, hashes.SHA256()).build()
             .public_bytes(serialization.Encoding.DER)]
    seeds.append(_two_requests(seeds[0], seeds[2]))
    while True:
        der = mutate(rng.choice(seeds), rng, seeds)
        label = rng.choice([CA] * 6 + ["deviceco-devices", "nope", "%2e%2e", "x" * 200])
        if rng.random() < 0.5:
            yield Request("POST", f"/ocsp/{label}", der,
                          [(b"content-type", b"application/ocsp-request")])
        else:
            encoded = base64.b64encode(der).decode()
            if rng.random() < 0.3:
                encoded = mutate(encoded.encode(), rng).decode("latin-1")
            yield Request("GET", f"/ocsp/{label}/{quote(encoded, safe='/+=')}")


def _two_requests(first: bytes, second: bytes) -> bytes:
    """One OCSPRequest naming the certificates of two single requests (RFC 6960 §4.1.1)."""
    from iotpki.wire.der import children, read_tlv, tlv

    def request_element(der: bytes) -> bytes:
        _, start, end = read_tlv(der, 0)
        tbs = next(der[s:e] for _, s, e in children(der, start, end))
        _, start, end = read_tlv(tbs, 0)
        request_list = next(tbs[s:e] for _, s, e in children(tbs, start, end))
        _, start, end = read_tlv(request_list, 0)
        return request_list[start:end]

    both = tlv(0x30, request_element(first) + request_element(second))
    return tlv(0x30, tlv(0x30, both))


def ocsp_fault(request: Request, answer: Answer) -> bool:
    """Every OCSP answer is a 200 OCSP response; internalError is a fault of ours."""
    if answer.status != 200:
        return answer.status >= 500 or request.path.count("/") < 2
    try:
        status = ocsp.load_der_ocsp_response(answer.body).response_status
    except ValueError:
        return True
    return status == ocsp.OCSPResponseStatus.INTERNAL_ERROR


# -- CRL fetch ---------------------------------------------------------------------------------

def crl_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    labels = [CA, "deviceco-devices", "chipco-components", "nope"]
    while True:
        label = rng.choice(labels)
        if rng.random() < 0.4:
            label = mutate(label.encode(), rng).decode("latin-1")
        path = rng.choice([f"/crl/{label}.crl", f"/crl/{label}-delta.crl", f"/ca/{label}.crt",
                           f"/crl/{label}", f"/crl/{label}.crl/x"])
        headers = []
        if rng.random() < 0.3:
            headers.append((b"if-modified-since", mutate(b"Sun, 06 Dec 2026 04:00:00 GMT", rng)))
        if rng.random() < 0.3:
            headers.append((b"if-none-match", mutate(b'"abc123"', rng)))
        method = rng.choice(["GET"] * 8 + ["HEAD", "POST"])
        yield Request(method, path, headers=headers)


# -- REST --------------------------------------------------------------------------------------

def _admin(pki: PKI, organization: str = "operatorco") -> bytes:
    created = pki.principals.create_api_key(organization, Role.ADMIN, "fuzz", "fuzz")
    assert created.api_key is not None
    return f"Bearer {created.api_key}".encode()


def rest_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    key = _admin(pki)
    leaf, _ = _issued(pki, "rest-fuzz")
    serial = format(leaf.serial_number, "x")
    bodies = {
        "/api/v1/registrations": {"authority": CA, "profile": "operational",
                                  "method": "one-time-secret", "subject": "CN=s-1",
                                  "domain": DOMAIN, "lifetime": "7d"},
        "/api/v1/registrations/bulk": {"authority": CA, "profile": "operational",
                                       "method": "one-time-secret", "domain": DOMAIN,
                                       "entries": [{"subject": "CN=s-2"}]},
        f"/api/v1/certificates/{CA}/{serial}/revoke": {"reason": "superseded"},
        "/api/v1/certificates/bulk-revoke": {"authority": CA, "profile": "operational",
                                             "reason": "superseded", "dry_run": True},
        "/api/v1/devices/d-1/events": {"event": "lost"},
        "/api/v1/manifests/export": {"recipient": "deviceco", "authority": CA},
        "/api/v1/registrations/r-1/cancel": {},
        "/api/v1/registrations/r-1/unlock": {},
    }
    gets = ["/api/v1/audit", "/api/v1/certificates", f"/api/v1/certificates/{CA}/{serial}",
            "/api/v1/devices", "/api/v1/devices/d-1", "/api/v1/organizations",
            "/api/v1/organizations/operatorco", "/api/v1/domains", "/api/v1/authorities",
            f"/api/v1/authorities/{CA}", "/api/v1/profiles", "/api/v1/profiles/operational",
            "/api/v1/registrations", "/api/v1/registrations/r-1"]
    queries = [b"limit=10", b"limit=0", b"cursor=cDEw", b"status=open", b"limit=1000&cursor=x"]
    seeds = [json.dumps(b).encode() for b in bodies.values()]
    while True:
        headers = [(b"authorization", key)] if rng.random() < 0.9 else []
        if rng.random() < 0.5:
            path = rng.choice(gets)
            if rng.random() < 0.3:
                path = mutate(path.encode(), rng).decode("latin-1")
            yield Request("GET", path, headers=headers,
                          query=mutate(rng.choice(queries), rng) if rng.random() < 0.6 else b"")
            continue
        path, seed = rng.choice(list(bodies.items()))
        body = mutate(json.dumps(seed).encode(), rng, seeds) if rng.random() < 0.8 else \
            json.dumps(_mutate_json(seed, rng)).encode()
        headers.append((b"content-type", b"application/json"))
        if rng.random() < 0.2:
            headers.append((b"idempotency-key", mutate(b"k-1", rng)))
        yield Request(rng.choice(["POST"] * 9 + ["PUT"]), path, body, headers)


def _mutate_json(value: object, rng: random.Random) -> object:
    """A structural mutation: a value replaced by one of another type or an extreme one."""
    extremes: list[object] = [None, 0, -1, 2 ** 63, 10 ** 30, 1e308, "", "x" * 5000,
                              "\u0000", [], {}, [1] * 1000, True, "CN=" + "a" * 300]
    if isinstance(value, dict) and value:
        copy = dict(value)
        field = rng.choice(list(copy))
        copy[field] = rng.choice(extremes) if rng.random() < 0.7 else _mutate_json(copy[field], rng)
        return copy
    if isinstance(value, list) and value:
        return [_mutate_json(v, rng) for v in value]
    return rng.choice(extremes)


# -- manifest import ---------------------------------------------------------------------------

def manifest_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    key = _admin(pki)
    records = []
    for index in range(3):
        outcome = pki.issuance.issue(IssuanceRequest("deviceco-devices", "device",
                                                     _csr(f"sensor-{index}", san=False), "fuzz"))
        assert isinstance(outcome, Issued)
        records.append(outcome.record)
    seeds = [pki.manifests.export("deviceco", "operatorco", records[:n], "fuzz")
             for n in (1, 3)]
    while True:
        der = mutate(rng.choice(seeds), rng, seeds)
        body = {"manifest": base64.b64encode(der).decode(), "authority": CA,
                "profile": "operational", "domain": DOMAIN}
        yield Request("POST", "/api/v1/manifests/import", json.dumps(body).encode(),
                      [(b"authorization", key), (b"content-type", b"application/json")])


# -- SCEP ---------------------------------------------------------------------------------------

def _scep_message(kind: int, content: bytes, ra: x509.Certificate, key: Any,
                  certificate: x509.Certificate) -> bytes:
    import os
    from datetime import UTC, datetime

    from iotpki.wire.scep.envelope import encode_envelope
    from iotpki.wire.scep.message import Attributes, encode_pki_message

    return encode_pki_message(Attributes(kind, "fuzz", os.urandom(16)),
                              encode_envelope(content, ra), key, certificate, [certificate],
                              datetime.now(UTC))


def scep_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    from datetime import UTC, datetime, timedelta

    from iotpki.core.ca.ports import Purpose
    from iotpki.wire.scep.content import encode_issuer_and_serial, encode_issuer_and_subject

    ra = pki.service_certificates.current("scep:", Purpose.SCEP_RA, issuer=CA).certificate
    key = generate_private_key("rsa-2048")
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "fuzz")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(now - timedelta(minutes=5))
                   .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    issuer = pki.authorities.get(CA).certificate.subject
    csr = (x509.CertificateSigningRequestBuilder().subject_name(name)
           .add_attribute(x509.oid.AttributeOID.CHALLENGE_PASSWORD, b"nobody:nothing")
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    contents = {19: csr, 20: encode_issuer_and_subject(issuer, name),
                21: encode_issuer_and_serial(issuer, 1), 22: encode_issuer_and_serial(issuer, 1)}
    seeds = [_scep_message(k, c, ra, key, certificate) for k, c in contents.items()]
    while True:
        if rng.random() < 0.3:  # a valid envelope and signature around mutated content
            kind = rng.choice(list(contents))
            body = _scep_message(kind, mutate(contents[kind], rng), ra, key, certificate)
        else:
            body = mutate(rng.choice(seeds), rng, seeds)
        if rng.random() < 0.2:
            message = quote(base64.b64encode(body).decode(), safe="")
            if rng.random() < 0.3:
                message = mutate(message.encode(), rng).decode("latin-1")
            yield Request("GET", "/scep", query=f"operation=PKIOperation&message={message}"
                          .encode("latin-1", "replace"))
        else:
            yield Request("POST", "/scep", body, [(b"content-type", b"application/x-pki-message")],
                          query=b"operation=PKIOperation")


def scep_fault(request: Request, answer: Answer) -> bool:
    """A 200 must carry a CertRep; anything but 200 must be a 400 (no CertRep possible)."""
    if answer.status == 400:
        return False
    if answer.status != 200:
        return True
    from iotpki.wire.errors import DecodeError
    from iotpki.wire.scep.message import decode_pki_message
    try:
        return decode_pki_message(answer.body).message_type != 3
    except DecodeError:
        return True


# -- CMC ----------------------------------------------------------------------------------------

def cmc_inputs(pki: PKI, rng: random.Random) -> Iterator[Request]:
    from tests.cmc.client import indefinite_lengths  # the BER form BouncyCastle sends

    from iotpki.wire.cmc import pki_data as P
    from iotpki.wire.cmc.identity_proof import identity_witness
    from iotpki.wire.cmc.request import sign_full_pki_request

    sha256, hmac_sha256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"
    key = generate_private_key("ec-p256")
    holder = pki.issuance.issue(IssuanceRequest(CA, "operational",
                                                _csr("cmc-fuzz", key=key), "fuzz"))
    assert isinstance(holder, Issued)
    created = pki.registrations.create(RegistrationSpec(
        "operatorco", CA, "operational", RegistrationMethod.ONE_TIME_SECRET,
        subject=parse_subject("CN=cmc-fuzz"), domain=DOMAIN), "fuzz")
    assert created.secret is not None
    requests = [P.tcr(1, _csr("cmc-fuzz"))]
    witness = identity_witness(created.secret.encode(), P.tlv(0x30, b"".join(requests)),
                               sha256, hmac_sha256)
    certificate = holder.certificate
    structured = [
        P.encode_pki_data([P.control(2, P.SENDER_NONCE, P.octet_string(b"fuzz")),
                           P.control(3, P.IDENTIFICATION,
                                     P.identification(created.registration.id)),
                           P.control(4, P.IDENTITY_PROOF_V2,
                                     P.identity_proof_v2(sha256, hmac_sha256, witness))],
                          requests),
        P.encode_pki_data([], [P.tcr(1, _csr("cmc-fuzz", san=False))]),
        P.encode_pki_data([P.control(1, P.REVOKE_REQUEST, P.revoke_request(
            certificate.issuer.public_bytes(), certificate.serial_number, 1))], []),
        P.encode_pki_data([P.control(1, P.QUERY_PENDING, P.octet_string(b"x:1"))], [])]
    seeds = [sign_full_pki_request(structured[0], key),
             *(sign_full_pki_request(d, key, [certificate]) for d in structured[1:])]
    seeds += [indefinite_lengths(s) for s in seeds]
    while True:
        if rng.random() < 0.4:  # a good signature around a mutated PKIData
            body = sign_full_pki_request(mutate(rng.choice(structured), rng), key, [certificate])
        else:
            body = mutate(rng.choice(seeds), rng, seeds)
        media = (b"application/pkcs7-mime; smime-type=CMC-request" if rng.random() < 0.95
                 else mutate(b"application/pkcs7-mime", rng))
        yield Request("POST", "/cmc", body, [(b"content-type", media)], client=_client(rng))


def cmc_fault(request: Request, answer: Answer) -> bool:
    """RFC 5273: a 200 carrying a signed PKIResponse without internalCAError; only a wrong
    media type (415) or size (413) may be answered otherwise."""
    if answer.status in (413, 415):
        return False
    if answer.status != 200:
        return True
    from iotpki.wire.cmc.response import decode_pki_response
    from iotpki.wire.cmc.signed_data import decode_signed_data
    from iotpki.wire.errors import DecodeError
    try:
        response = decode_pki_response(decode_signed_data(answer.body).content)
    except DecodeError:
        return True
    return any(s.fail_info == "internalCAError" for s in response.statuses)


# target → (inputs, which listener: "https" or "http", judge)
TARGETS: dict[str, tuple[Inputs, str, Callable[[Request, Answer], bool] | None]] = {
    "est": (est_inputs, "https", None),
    "ocsp": (ocsp_inputs, "http", ocsp_fault),
    "crl": (crl_inputs, "http", None),
    "rest": (rest_inputs, "https", None),
    "manifest": (manifest_inputs, "https", None),
    "scep": (scep_inputs, "http", scep_fault),
    "cmc": (cmc_inputs, "http", cmc_fault),
}
