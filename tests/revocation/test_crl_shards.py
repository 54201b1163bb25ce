"""Sharded CRLs (RFC 5280 §5.2.5 issuingDistributionPoint, §4.2.1.13 CDP, §5.2.3 numbers per
scope, §5.2.4 deltas, §6.3.3 scope checks) on a small scale, checked by peers we did not
write: `openssl verify -crl_check[_all] [-use_deltas]` and pkilint's `lint_crl`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from starlette.applications import Starlette

from iotpki.app import PKI, build_pki
from iotpki.background import RevocationWorker
from iotpki.core.ca.crl_shard import crl_shard_of
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.core.revocation.status import CRLKind, PublishedCRL
from iotpki.protocols.crl.routes import routes as crl_routes
from tests.factories import domain_uri, make_csr
from tests.revocation.conftest import CA, DOMAIN, ROOT
from tests.revocation.openssl_verify import Verifier

pytestmark = pytest.mark.interop
WINDOW = timedelta(days=7)


@pytest.fixture
def sharded(demo_pki: PKI) -> Iterator[PKI]:
    """The demo PKI with the operational CA sharded by week of expiry, as a node started
    after the setting (nodes read it when they first sign with the authority)."""
    demo_pki.authorities.set_crl_sharding(CA, WINDOW, "test")
    node = build_pki(demo_pki.settings, migrate=False)
    try:
        yield node
    finally:
        node.close()


def issue(pki: PKI, name: str, weeks: int = 10) -> Issued:
    """An operational certificate expiring in `weeks` weeks: its shard."""
    csr, _ = make_csr(name, [domain_uri(DOMAIN)])
    not_after = pki.clock.now() + timedelta(weeks=weeks)
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test",
                                                 not_after=not_after))
    assert isinstance(outcome, Issued), outcome
    return outcome


def revoke(pki: PKI, issued: Issued, reason: x509.ReasonFlags) -> None:
    pki.revocation.revoke(CA, issued.record.serial, reason, "test")


def shard_of(issued: Issued) -> int:
    assert issued.record.crl_shard is not None
    return issued.record.crl_shard


def full(pki: PKI, shard: int) -> PublishedCRL:
    return pki.crls.publish(CA, [CRLKind.FULL], shard)[0]


def delta(pki: PKI, shard: int) -> PublishedCRL:
    return pki.crls.publish(CA, [CRLKind.DELTA], shard)[0]


def serials(crl: PublishedCRL) -> set[int]:
    return {r.serial_number for r in x509.load_der_x509_crl(crl.der)}


@pytest.fixture
def verifier(sharded: PKI, tmp_path: Path) -> Verifier:
    return Verifier(sharded, tmp_path)


def test_each_certificate_names_its_shard_chosen_by_expiry(sharded: PKI) -> None:
    near, near_too, far = issue(sharded, "near"), issue(sharded, "near-too"), issue(
        sharded, "far", weeks=20)
    assert shard_of(near) == crl_shard_of(near.record.not_after, WINDOW) == shard_of(near_too)
    assert shard_of(far) != shard_of(near)
    cdp = near.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert cdp.value[0].full_name == [x509.UniformResourceIdentifier(
        f"{sharded.settings.public_url}/crl/{CA}.{shard_of(near)}.crl")]
    stored = sharded.certificates.get(CA, near.record.serial)
    assert stored.crl_shard == shard_of(near)


def test_a_shard_crl_names_its_shard_and_lists_only_its_certificates(sharded: PKI) -> None:
    near, far = issue(sharded, "near"), issue(sharded, "far", weeks=20)
    revoke(sharded, near, x509.ReasonFlags.key_compromise)
    revoke(sharded, far, x509.ReasonFlags.superseded)
    near_crl, far_crl = full(sharded, shard_of(near)), full(sharded, shard_of(far))
    assert serials(near_crl) == {near.record.serial}
    assert serials(far_crl) == {far.record.serial}
    idp = x509.load_der_x509_crl(near_crl.der).extensions.get_extension_for_class(
        x509.IssuingDistributionPoint)
    assert idp.critical  # RFC 5280 §5.2.5
    assert idp.value.only_contains_user_certs
    assert idp.value.full_name == [x509.UniformResourceIdentifier(
        f"{sharded.settings.public_url}/crl/{CA}.{shard_of(near)}.crl")]
    # The CA's own CRL keeps covering what it covered: certificates in no shard.
    assert not serials(sharded.crls.publish(CA, [CRLKind.FULL])[0]) & {
        near.record.serial, far.record.serial}


def test_crl_numbers_run_per_shard(sharded: PKI) -> None:
    near, far = issue(sharded, "near"), issue(sharded, "far", weeks=20)
    numbers = [full(sharded, shard_of(near)).info.number for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert full(sharded, shard_of(far)).info.number == 1  # §5.2.3: one sequence per scope
    assert delta(sharded, shard_of(near)).info.number == 4  # full and delta share it


def test_openssl_checks_a_leaf_against_its_shard_crl(sharded: PKI, verifier: Verifier) -> None:
    good, stolen = issue(sharded, "good"), issue(sharded, "stolen")
    revoke(sharded, stolen, x509.ReasonFlags.key_compromise)
    crl = full(sharded, shard_of(good))
    code, out = verifier.run(good, [crl], "-crl_check")
    assert code == 0, out
    code, out = verifier.run(stolen, [crl], "-crl_check")
    assert code != 0 and "certificate revoked" in out
    root_crl = sharded.crls.publish(ROOT, [CRLKind.FULL])[0]
    code, out = verifier.run(good, [crl, root_crl], "-crl_check_all")
    assert code == 0, out
    code, out = verifier.run(stolen, [crl, root_crl], "-crl_check_all")
    assert code != 0 and "certificate revoked" in out


def test_openssl_refuses_another_shards_crl_as_covering_a_leaf(
        sharded: PKI, verifier: Verifier) -> None:
    stolen, other = issue(sharded, "stolen"), issue(sharded, "other", weeks=20)
    revoke(sharded, stolen, x509.ReasonFlags.key_compromise)
    # The other shard's CRL: same issuer, valid signature, but its IDP is not the leaf's CDP
    # (RFC 5280 §6.3.3 (b)(2)): it says nothing about the leaf.
    code, out = verifier.run(stolen, [full(sharded, shard_of(other))], "-crl_check")
    assert code != 0 and "different CRL scope" in out, out
    # Nor does the CA's own (unsharded) CRL, whose IDP names the CA's URL.
    code, out = verifier.run(stolen, [sharded.crls.publish(CA, [CRLKind.FULL])[0]],
                             "-crl_check")
    assert code != 0 and "different CRL scope" in out, out


def test_openssl_applies_a_shards_delta_crl(sharded: PKI, verifier: Verifier) -> None:
    stolen, lost = issue(sharded, "stolen"), issue(sharded, "lost")
    shard = shard_of(stolen)
    revoke(sharded, lost, x509.ReasonFlags.certificate_hold)
    base = full(sharded, shard)
    revoke(sharded, stolen, x509.ReasonFlags.key_compromise)
    assert verifier.run(stolen, [base], "-crl_check")[0] == 0  # the base alone is stale
    news = delta(sharded, shard)
    assert serials(news) == {stolen.record.serial}
    code, out = verifier.run(stolen, [base, news], "-crl_check", "-use_deltas")
    assert code != 0 and "certificate revoked" in out
    sharded.revocation.release(CA, lost.record.serial, "test")
    code, out = verifier.run(lost, [base, delta(sharded, shard)], "-crl_check", "-use_deltas")
    assert code == 0, out  # removeFromCRL in the shard's delta lifts the base's hold


@pytest.mark.parametrize("kind", [CRLKind.FULL, CRLKind.DELTA])
def test_pkilint_finds_no_error_in_shard_crls(sharded: PKI, tmp_path: Path,
                                              kind: CRLKind) -> None:
    held, stolen, far = issue(sharded, "held"), issue(sharded, "stolen"), issue(
        sharded, "far", weeks=20)
    revoke(sharded, held, x509.ReasonFlags.certificate_hold)
    revoke(sharded, far, x509.ReasonFlags.cessation_of_operation)
    for shard in (shard_of(held), shard_of(far)):
        full(sharded, shard)
    revoke(sharded, stolen, x509.ReasonFlags.key_compromise)
    sharded.revocation.release(CA, held.record.serial, "test")
    for shard in (shard_of(held), shard_of(far)):  # every shard, with and without entries
        crl = {c.info.kind: c for c in sharded.crls.publish(
            CA, [CRLKind.FULL, CRLKind.DELTA], shard)}[kind]
        path = tmp_path / f"{shard}-{kind.value}.der"
        path.write_bytes(crl.der)
        done = subprocess.run(["lint_crl", "lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING",
                               str(path)], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0 and "ERROR" not in done.stdout \
            and "FATAL" not in done.stdout, done.stdout + done.stderr


def get_all(pki: PKI, paths: list[str]) -> list[httpx.Response]:
    """GET each path from the CRL routes, in process (httpx on the ASGI app)."""
    app = Starlette(routes=crl_routes(pki.crl_distribution, pki.clock))

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://pki.test") as client:
            return [await client.get(path) for path in paths]

    return anyio.run(run)


def test_shard_crls_are_served_at_their_cdp(sharded: PKI) -> None:
    good = issue(sharded, "good")
    shard = shard_of(good)
    bad = [f"{CA}.{shard + 1}", f"{CA}.x1", f"{CA}.", f"{CA}.-1", f"no-such.{shard}"]
    answer, delta_answer, whole, *refused = get_all(sharded, [
        f"/crl/{CA}.{shard}.crl", f"/crl/{CA}.{shard}-delta.crl", f"/crl/{CA}.crl",
        *(f"/crl/{name}.crl" for name in bad)])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pkix-crl"
    assert answer.headers["etag"] == f'"{CA}.{shard}-full-1"'
    crl = x509.load_der_x509_crl(answer.content)
    assert crl.extensions.get_extension_for_class(x509.FreshestCRL).value[0].full_name == [
        x509.UniformResourceIdentifier(f"{sharded.settings.public_url}/crl/{CA}.{shard}-delta.crl")]
    assert delta_answer.status_code == 200
    assert x509.load_der_x509_crl(delta_answer.content).extensions.get_extension_for_class(
        x509.DeltaCRLIndicator).value.crl_number == crl.extensions.get_extension_for_class(
        x509.CRLNumber).value.crl_number
    # A shard nobody issued into, a malformed one, another CA's: 404, nothing published.
    assert [r.status_code for r in refused] == [404] * len(bad)
    assert whole.status_code == 200  # the CA's own, as before


def test_ocsp_answers_for_sharded_certificates(sharded: PKI) -> None:
    good, stolen = issue(sharded, "good"), issue(sharded, "stolen")
    revoke(sharded, stolen, x509.ReasonFlags.key_compromise)
    for leaf, status in ((good, ocsp.OCSPCertStatus.GOOD), (stolen, ocsp.OCSPCertStatus.REVOKED)):
        request = ocsp.OCSPRequestBuilder().add_certificate(
            leaf.certificate, leaf.chain[0], hashes.SHA256()).build().public_bytes(Encoding.DER)
        answer = ocsp.load_der_ocsp_response(sharded.ocsp.respond(CA, request).der)
        assert answer.certificate_status is status


def test_a_nodes_revocation_worker_builds_the_shards(sharded: PKI) -> None:
    """`iotpki serve`'s background worker runs the shard round (after the CAs' own CRLs)."""
    near, far = issue(sharded, "near"), issue(sharded, "far", weeks=20)
    worker = RevocationWorker(sharded.ocsp, sharded.crls, sharded.crl_distribution,
                              lambda: None, poll=0.05, publish_every=0.1,
                              shards=sharded.crl_shards)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(
                sharded.crls.latest_info(CA, CRLKind.FULL, shard_of(leaf)) is None
                for leaf in (near, far)):
            time.sleep(0.1)
    finally:
        worker.stop()
    for leaf in (near, far):
        crl = sharded.crls.latest(CA, CRLKind.FULL, shard_of(leaf))
        assert crl is not None and crl.info.shard == shard_of(leaf)
