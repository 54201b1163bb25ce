"""RFC 8555 in process: directory (§7.1.1), nonces (§7.2), accounts (§7.3), orders and
http-01 (§7.4, §8.3), finalize and download (§7.4.2), revocation (§7.6), with each JWS
algorithm ACME clients use (§6.2)."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.core.ca.certificate import CertificateStatus
from tests.acme.client import ACMEClient
from tests.acme.conftest import ACMEWorld
from tests.factories import make_csr


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue(acme: ACMEWorld, client: ACMEClient, *names: str) -> tuple[dict, x509.Certificate]:
    order = client.new_order(*names)
    assert order.status_code == 201, order.text
    order_url = order.headers["Location"]
    acme.answer_http01(client, order.json())
    ready = client.get(order_url).json()
    assert ready["status"] == "ready"
    csr, _ = make_csr(names[0], sans=[x509.DNSName(n) for n in names])
    final = client.post(ready["finalize"], {"csr": b64(csr)})
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "valid"
    chain = client.get(final.json()["certificate"])
    assert chain.status_code == 200
    assert chain.headers["content-type"].startswith("application/pem-certificate-chain")
    certificates = x509.load_pem_x509_certificates(chain.content)
    assert len(certificates) == 2  # the certificate and the issuing CA (§7.4.2)
    return final.json(), certificates[0]


def test_s7_1_1_directory(acme: ACMEWorld) -> None:
    directory = acme.http.get("/acme/directory").json()
    for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange",
                 "renewalInfo"):
        assert directory[name].startswith("https://acme.test/acme/")
    assert directory["meta"]["externalAccountRequired"] is False
    labelled = acme.http.get("/acme/operations/directory").json()
    assert labelled["newOrder"] == "https://acme.test/acme/operations/new-order"
    assert labelled["meta"]["externalAccountRequired"] is True


def test_s7_2_new_nonce(acme: ACMEWorld) -> None:
    head = acme.http.head("/acme/new-nonce")
    get = acme.http.get("/acme/new-nonce")
    assert (head.status_code, get.status_code) == (200, 204)
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]
    assert head.headers["Cache-Control"] == "no-store"
    assert 'rel="index"' in head.headers["Link"]


def test_unknown_label_is_404_problem(acme: ACMEWorld) -> None:
    answer = acme.http.get("/acme/nowhere/directory")
    assert answer.status_code == 404
    assert answer.json()["type"] == "urn:ietf:params:acme:error:malformed"


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa-2048", "ed25519"])
def test_s6_2_every_algorithm_from_account_to_certificate(acme: ACMEWorld,
                                                         key_type: str) -> None:
    """ES256, ES384, RS256, EdDSA: account, order, http-01, finalize, download."""
    client = acme.account(key_type=key_type)
    name = f"{key_type}.flow.example"
    order, certificate = issue(acme, client, name)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [name]
    assert order["identifiers"] == [{"type": "dns", "value": name}]


def test_s7_3_1_existing_account_is_found_by_key(acme: ACMEWorld) -> None:
    client = acme.account()
    again = ACMEClient(acme.http, client.directory_url, client.key)
    answer = again.new_account(onlyReturnExisting=True)
    assert answer.status_code == 200
    assert answer.headers["Location"] == client.kid
    stranger = acme.client()
    answer = stranger.new_account(onlyReturnExisting=True)
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:ietf:params:acme:error:accountDoesNotExist"


def test_s7_4_2_alternate_chain_adds_the_root(acme: ACMEWorld) -> None:
    client = acme.account()
    order, _ = issue(acme, client, "alternate.flow.example")
    first = client.get(order["certificate"])
    assert 'rel="alternate"' in first.headers["Link"]
    full = client.get(order["certificate"] + "/1")
    chain = x509.load_pem_x509_certificates(full.content)
    assert len(chain) == 3 and chain[-1].subject == chain[-1].issuer


def test_s7_6_revoke_by_account(acme: ACMEWorld) -> None:
    client = acme.account()
    _, certificate = issue(acme, client, "revoke.flow.example")
    der = certificate.public_bytes(serialization.Encoding.DER)
    answer = client.post(client.directory["revokeCert"], {"certificate": b64(der), "reason": 4})
    assert answer.status_code == 200, answer.text
    record = acme.pki.certificates.get_by_fingerprint(
        certificate.fingerprint(hashes.SHA256()).hex())
    assert record.status is CertificateStatus.REVOKED
    assert record.revocation_reason == "superseded"
    again = client.post(client.directory["revokeCert"], {"certificate": b64(der)})
    assert again.status_code == 400
    assert again.json()["type"] == "urn:ietf:params:acme:error:alreadyRevoked"
