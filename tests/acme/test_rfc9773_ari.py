"""ACME Renewal Information (RFC 9773) in process: certificate ids (§4.1), suggested windows
(§4.2) with Retry-After (§4.3), windows pulled forward and spread by fingerprint, and
`replaces` in newOrder (§5)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.wire.acme.messages import ari_certificate_id, decode_ari_certificate_id
from tests.acme.client import ACMEClient
from tests.acme.conftest import ACMEWorld
from tests.factories import make_csr


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def issue(acme: ACMEWorld, client: ACMEClient, name: str,
          replaces: str | None = None) -> x509.Certificate:
    payload: dict = {"identifiers": [{"type": "dns", "value": name}]}
    if replaces is not None:
        payload["replaces"] = replaces
    order = client.post(client.directory["newOrder"], payload)
    assert order.status_code == 201, order.text
    if order.json()["status"] == "pending":
        acme.answer_http01(client, order.json())
    csr, _ = make_csr(name, sans=[x509.DNSName(name)])
    final = client.post(order.json()["finalize"], {"csr": b64(csr)}).json()
    return x509.load_pem_x509_certificates(client.get(final["certificate"]).content)[0]


def window(acme: ACMEWorld, certificate: x509.Certificate) -> tuple[datetime, datetime]:
    answer = acme.http.get(f"/acme/renewal-info/{ari_certificate_id(certificate)}")
    assert answer.status_code == 200, answer.text
    assert int(answer.headers["Retry-After"]) > 0  # §4.3
    suggested = answer.json()["suggestedWindow"]
    return when(suggested["start"]), when(suggested["end"])


def test_s4_1_certificate_id_of_the_rfc_example() -> None:
    key_id = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert decode_ari_certificate_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE") == (
        key_id, 0x87654321)


def test_s4_2_window_inside_the_profiles_renewal_window(acme: ACMEWorld) -> None:
    client = acme.account()
    certificate = issue(acme, client, "ari.window.example")
    start, end = window(acme, certificate)
    assert start < end
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    # service profile: the last third of the lifetime; the window is a slice of its first half
    assert certificate.not_valid_after_utc - lifetime / 3 <= start
    assert end <= certificate.not_valid_after_utc - lifetime / 6 + timedelta(seconds=1)
    assert window(acme, certificate) == (start, end)  # the same answer every time


def test_fleet_windows_are_spread(acme: ACMEWorld) -> None:
    client = acme.account()
    starts = {window(acme, issue(acme, client, f"fleet-{i}.ari.example"))[0] for i in range(4)}
    assert len(starts) == 4


def test_pulled_forward_window_and_revoked_certificate(acme: ACMEWorld) -> None:
    client = acme.account()
    certificate = issue(acme, client, "pulled.ari.example")
    before = acme.pki.clock.now()
    acme.pki.renewal_info.pull_forward("operatorco-operations", "service", timedelta(days=2),
                                       "CA key rollover", "test")
    start, end = window(acme, certificate)
    assert before - timedelta(seconds=1) <= start < end <= before + timedelta(days=2, seconds=2)
    der = certificate.public_bytes(Encoding.DER)
    assert client.post(client.directory["revokeCert"],
                       {"certificate": b64(der)}).status_code == 200
    start, _ = window(acme, certificate)
    assert start <= acme.pki.clock.now() + timedelta(seconds=1)  # renew now


def test_s4_1_unknown_or_malformed_ids(acme: ACMEWorld) -> None:
    assert acme.http.get("/acme/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
                         ).status_code == 404
    answer = acme.http.get("/acme/renewal-info/not-an-id")
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:ietf:params:acme:error:malformed"


def test_s5_replaces_names_a_certificate_of_the_account(acme: ACMEWorld) -> None:
    client, other = acme.account(), acme.account()
    first = issue(acme, client, "replace.ari.example")
    second = issue(acme, client, "replace.ari.example", replaces=ari_certificate_id(first))
    assert second.serial_number != first.serial_number
    refused = other.post(other.directory["newOrder"], {
        "identifiers": [{"type": "dns", "value": "replace.ari.example"}],
        "replaces": ari_certificate_id(first)})
    assert refused.status_code == 400
    assert refused.json()["type"] == "urn:ietf:params:acme:error:malformed"
