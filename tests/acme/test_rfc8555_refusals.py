"""Bad input to ACME: each refusal is the RFC 8555 problem type (§6.7), nothing is issued,
and the refusal is audited."""

from __future__ import annotations

import base64
import json

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.core.ca.ports import CertificateQuery
from iotpki.wire.acme.jws import b64url_encode, jwk_of, sign_jws, sign_mac_jws
from iotpki.wire.keys import generate_private_key
from tests.acme.client import JOSE, ACMEClient
from tests.acme.conftest import ACMEWorld
from tests.factories import make_csr

ERR = "urn:ietf:params:acme:error:"
OWNED = "building-42.operator.example"  # OperatorCo's operational domain (demo)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def problem(answer, kind: str, status: int = 400) -> dict:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers.get("Replay-Nonce")
    body = answer.json()
    assert body["type"] == ERR + kind, body
    return body


def issued_for(acme: ACMEWorld, name: str) -> int:
    return sum(1 for r in acme.pki.certificates.find(CertificateQuery(limit=1000))
               if f"dns:{name}" in r.sans)


def refusals(acme: ACMEWorld, since: int) -> list[str]:
    return [e.details["problem"] for e in acme.audit_since(since, "acme.request")
            if e.outcome == "refused"]


def ready_order(acme: ACMEWorld, client: ACMEClient, name: str) -> dict:
    order = client.new_order(name)
    assert order.status_code == 201, order.text
    acme.answer_http01(client, order.json())
    return client.get(order.headers["Location"]).json()


# -- §6.2 JWS --------------------------------------------------------------------------------------

def test_s6_2_body_not_jws_is_malformed(acme: ACMEWorld) -> None:
    since = acme.audit_head()
    answer = acme.http.post("/acme/new-account", content=b"{not json", headers=JOSE)
    problem(answer, "malformed")
    assert refusals(acme, since) == ["malformed"]


def test_s6_2_wrong_media_type_is_415(acme: ACMEWorld) -> None:
    answer = acme.http.post("/acme/new-account", content=b"{}",
                            headers={"Content-Type": "application/json"})
    problem(answer, "malformed", 415)


def test_s6_2_mac_and_none_algorithms_are_refused(acme: ACMEWorld) -> None:
    client = acme.client()
    for alg in ("none", "HS256"):
        header = {"alg": alg, "nonce": client.fresh_nonce(), "url": client.directory["newAccount"],
                  "jwk": jwk_of(client.key.public_key())}
        body = {"protected": b64url_encode(json.dumps(header).encode()),
                "payload": b64url_encode(b"{}"), "signature": ""}
        answer = acme.http.post("/acme/new-account", content=json.dumps(body), headers=JOSE)
        assert problem(answer, "badSignatureAlgorithm")["algorithms"] == [
            "ES256", "ES384", "RS256", "EdDSA"]


def test_s6_2_unprotected_header_is_malformed(acme: ACMEWorld) -> None:
    client = acme.client()
    body = sign_jws(client.key, {}, client.directory["newAccount"], client.fresh_nonce())
    body["header"] = {"kid": "x"}  # type: ignore[assignment]
    problem(acme.http.post("/acme/new-account", content=json.dumps(body), headers=JOSE),
            "malformed")


def test_s6_2_bad_signature_creates_no_account(acme: ACMEWorld) -> None:
    client = acme.client()
    body = sign_jws(client.key, {"termsOfServiceAgreed": True}, client.directory["newAccount"],
                    client.fresh_nonce())
    body["signature"] = b64url_encode(b"\x01" * 64)
    problem(acme.http.post("/acme/new-account", content=json.dumps(body), headers=JOSE),
            "malformed")
    assert client.new_account(onlyReturnExisting=True).status_code == 400


def test_s6_2_jwk_where_kid_is_required(acme: ACMEWorld) -> None:
    client = acme.account()
    answer = client.post(client.directory["newOrder"],
                         {"identifiers": [{"type": "dns", "value": "a.example"}]}, use_jwk=True)
    problem(answer, "malformed")


def test_s6_4_url_must_be_the_request_url(acme: ACMEWorld) -> None:
    client = acme.account()
    body = sign_jws(client.key, {"identifiers": [{"type": "dns", "value": "a.example"}]},
                    "https://elsewhere.test/acme/new-order", client.fresh_nonce(), kid=client.kid)
    problem(acme.http.post("/acme/new-order", content=json.dumps(body), headers=JOSE),
            "unauthorized", 403)


# -- §6.5 nonces ---------------------------------------------------------------------------------

def test_s6_5_replayed_nonce_is_bad_nonce(acme: ACMEWorld) -> None:
    client = acme.account()
    nonce = client.fresh_nonce()
    first = client.post(client.kid, None, nonce=nonce)
    assert first.status_code == 200
    since = acme.audit_head()
    replay = client.post(client.kid, None, nonce=nonce)
    body = problem(replay, "badNonce")
    assert "nonce" in body["detail"]
    assert refusals(acme, since) == ["badNonce"]
    # §6.5: the fresh nonce of a badNonce answer works.
    assert client.post(client.kid, None).status_code == 200


def test_s6_5_invented_nonce_is_bad_nonce(acme: ACMEWorld) -> None:
    client = acme.account()
    problem(client.post(client.kid, None, nonce=b64url_encode(b"made up")), "badNonce")


# -- §7.3 accounts -----------------------------------------------------------------------------

def test_s7_3_unknown_kid_is_account_does_not_exist(acme: ACMEWorld) -> None:
    client = acme.client()
    client.kid = "https://acme.test/acme/acct/0000"
    problem(client.new_order("a.example"), "accountDoesNotExist")


def test_s7_3_wrong_account_sees_no_order(acme: ACMEWorld) -> None:
    owner, other = acme.account(), acme.account()
    order = owner.new_order("owned.refusal.example")
    url = order.headers["Location"]
    problem(other.get(url), "unauthorized", 403)
    problem(other.get(order.json()["authorizations"][0]), "unauthorized", 403)
    since = acme.audit_head()
    problem(other.get(owner.kid), "unauthorized", 403)
    assert [r.actor for r in acme.audit_since(since, "acme.request")] == [
        "acme:" + other.kid.rsplit("/", 1)[1]]  # type: ignore[union-attr]


def test_s7_3_4_eab_required(acme: ACMEWorld) -> None:
    since = acme.audit_head()
    client = acme.client("operations")
    problem(client.new_account(), "externalAccountRequired", 403)
    assert refusals(acme, since) == ["externalAccountRequired"]


def test_s7_3_4_eab_wrong_mac_and_reuse(acme: ACMEWorld) -> None:
    made = acme.pki.acme_keys.create("operatorco", "test")
    key = base64.urlsafe_b64decode(made.hmac_key + "=" * (-len(made.hmac_key) % 4))
    client = acme.client("operations")
    problem(client.new_account((made.key_id, b"wrong key" * 4)), "unauthorized", 403)
    problem(client.new_account(("eab-unknown", key)), "unauthorized", 403)
    assert client.new_account((made.key_id, key)).status_code == 201
    other = acme.client("operations")
    problem(other.new_account((made.key_id, key)), "unauthorized", 403)  # one account per key


def test_s7_3_4_eab_must_sign_the_account_key(acme: ACMEWorld) -> None:
    made = acme.pki.acme_keys.create("operatorco", "test")
    key = base64.urlsafe_b64decode(made.hmac_key + "=" * (-len(made.hmac_key) % 4))
    client = acme.client("operations")
    url = client.directory["newAccount"]
    other_key = jwk_of(generate_private_key("ec-p256").public_key())
    body = {"externalAccountBinding": sign_mac_jws(key, made.key_id, other_key, url)}
    problem(client.post(url, body, use_jwk=True), "unauthorized", 403)


# -- §7.4 orders: domains, wildcards -------------------------------------------------------

def test_foreign_domain_needs_an_account_bound_to_its_organization(acme: ACMEWorld) -> None:
    """An identifier in OperatorCo's domain: refused to an unbound account and to one bound
    to DeviceCo, accepted for one bound to OperatorCo through its EAB key."""
    name = f"gw.{OWNED}"
    since = acme.audit_head()
    problem(acme.account().new_order(name), "rejectedIdentifier")
    problem(acme.account(organization="deviceco").new_order(name), "rejectedIdentifier")
    assert [e.details["reason"] for e in acme.audit_since(since, "acme.request")] == [
        "domain-not-owned", "domain-not-owned"]
    bound = acme.account(organization="operatorco")
    order = ready_order(acme, bound, name)
    csr, _ = make_csr(name, sans=[x509.DNSName(name)])
    assert bound.post(order["finalize"], {"csr": b64(csr)}).json()["status"] == "valid"


def test_wildcards_are_refused(acme: ACMEWorld) -> None:
    answer = acme.account().new_order("*.wild.example")
    assert "wildcard" in problem(answer, "rejectedIdentifier")["detail"]


def test_unsupported_identifier_type(acme: ACMEWorld) -> None:
    problem(acme.account().new_order("192.0.2.1", kind="ip"), "unsupportedIdentifier")
    problem(acme.account().new_order("x", kind="email"), "unsupportedIdentifier")


# -- §8 challenges ---------------------------------------------------------------------------

def test_s8_3_wrong_http01_answer_invalidates(acme: ACMEWorld) -> None:
    client = acme.account()
    order = client.new_order("wrong.refusal.example")
    url = order.headers["Location"]
    challenge = client.challenge(order.json(), "http-01")[0]
    acme.responder.answers[challenge["token"]] = b"not the key authorization"
    since = acme.audit_head()
    answer = client.post(challenge["url"], {}).json()
    assert answer["status"] == "invalid"
    assert answer["error"]["type"] == ERR + "incorrectResponse"
    assert [e.outcome for e in acme.audit_since(since, "acme.challenge")] == ["refused"]
    assert client.get(url).json()["status"] == "invalid"
    csr, _ = make_csr("wrong.refusal.example", sans=[x509.DNSName("wrong.refusal.example")])
    problem(client.post(order.json()["finalize"], {"csr": b64(csr)}), "orderNotReady", 403)
    assert issued_for(acme, "wrong.refusal.example") == 0


def test_s8_3_unreachable_responder_is_connection(acme: ACMEWorld) -> None:
    client = acme.account()
    order = client.new_order("absent.refusal.example").json()
    challenge = client.challenge(order, "http-01")[0]
    answer = client.post(challenge["url"], {}).json()  # the responder answers 404
    assert answer["status"] == "invalid"
    assert answer["error"]["type"] == ERR + "incorrectResponse"


# -- §7.4 finalize ---------------------------------------------------------------------------

def test_s7_4_csr_not_matching_the_order_is_bad_csr(acme: ACMEWorld) -> None:
    client = acme.account()
    name = "csr.refusal.example"
    order = ready_order(acme, client, name)
    since = acme.audit_head()
    for names in (["other.refusal.example"], [name, "extra.refusal.example"]):
        csr, _ = make_csr(None, sans=[x509.DNSName(n) for n in names])
        problem(client.post(order["finalize"], {"csr": b64(csr)}), "badCSR")
    problem(client.post(order["finalize"], {"csr": "!!"}), "badCSR")
    assert refusals(acme, since) == ["badCSR"] * 3
    assert issued_for(acme, name) == 0
    assert client.get(order["finalize"].rsplit("/", 1)[0]).json()["status"] == "ready"


def test_s11_1_account_key_in_csr_is_bad_csr(acme: ACMEWorld) -> None:
    client = acme.account()
    name = "samekey.refusal.example"
    order = ready_order(acme, client, name)
    csr, _ = make_csr(name, sans=[x509.DNSName(name)], key=client.key)
    problem(client.post(order["finalize"], {"csr": b64(csr)}), "badCSR")
    assert issued_for(acme, name) == 0


def test_s7_4_profile_refusal_leaves_order_invalid(acme: ACMEWorld) -> None:
    """The service profile takes no Ed25519 keys: the core refuses, nothing is issued."""
    client = acme.account()
    name = "ed.refusal.example"
    order = ready_order(acme, client, name)
    csr, _ = make_csr(name, sans=[x509.DNSName(name)], key_type="ed25519")
    problem(client.post(order["finalize"], {"csr": b64(csr)}), "badCSR")
    assert client.get(order["finalize"].rsplit("/", 1)[0]).json()["status"] == "invalid"
    assert issued_for(acme, name) == 0


def test_s7_6_revoke_by_another_account_is_unauthorized(acme: ACMEWorld) -> None:
    client, other = acme.account(), acme.account()
    name = "revoker.refusal.example"
    order = ready_order(acme, client, name)
    csr, _ = make_csr(name, sans=[x509.DNSName(name)])
    final = client.post(order["finalize"], {"csr": b64(csr)}).json()
    pem = client.get(final["certificate"]).content
    der = x509.load_pem_x509_certificates(pem)[0].public_bytes(Encoding.DER)
    problem(other.post(other.directory["revokeCert"], {"certificate": b64(der)}),
            "unauthorized", 403)
    problem(client.post(client.directory["revokeCert"], {"certificate": b64(der), "reason": 7}),
            "badRevocationReason")


# -- hostile payloads: a problem document, never a 500 ----------------------------------------

PAYLOADS = [b"", b"null", b"[]", b"42", b'"x"', b"{", b'{"identifiers": [{}]}',
            b'{"identifiers": "x"}', b'{"csr": 7}', b'{"csr": "////"}', b'{"certificate": 1}',
            b'{"certificate": "AAAA", "reason": "1"}', b'{"contact": [1]}', b'{"status": 1}',
            b'{"externalAccountBinding": []}', b'{"attObj": "%%%"}', b'{"replaces": 5}',
            b'{"identifiers": [{"type": "dns", "value": "' + b"a" * 300 + b'"}]}']


def test_hostile_payloads_are_problems_never_server_errors(acme: ACMEWorld) -> None:
    client = acme.account()
    order = client.new_order("hostile.refusal.example").json()
    authz = order["authorizations"][0]
    challenge = client.challenge(order, "http-01")[0]["url"]
    urls = [client.directory["newOrder"], client.directory["revokeCert"],
            client.directory["keyChange"], client.kid, authz, challenge, order["finalize"],
            client.directory["newAccount"]]
    for url in urls:
        for payload in PAYLOADS:
            answer = client.post(url, payload, use_jwk=url.endswith(("new-account",
                                                                     "revoke-cert")))
            assert answer.status_code < 500, (url, payload, answer.text)
            if answer.status_code >= 400:
                assert answer.json()["type"].startswith(ERR), answer.text


def test_an_account_belongs_to_its_endpoint(acme: ACMEWorld) -> None:
    """An account made without EAB on the unlabelled endpoint cannot act on `operations`
    (EAB required) by pointing kid there, nor register its key there again."""
    client = acme.account()
    account_id = client.kid.rsplit("/", 1)[1]  # type: ignore[union-attr]
    other = acme.client("operations", key=client.key)
    other.kid = f"https://acme.test/acme/operations/acct/{account_id}"
    problem(other.new_order("crossing.refusal.example"), "accountDoesNotExist")
    problem(other.new_account(onlyReturnExisting=True), "malformed")
