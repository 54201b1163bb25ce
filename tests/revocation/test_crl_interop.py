"""Our CRLs checked by peers we did not write: `openssl verify -crl_check[_all] [-use_deltas]`
and pkilint's `lint_crl` (RFC 5280 §5, §6.3)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.revocation.status import CRLKind, PublishedCRL
from tests.revocation.conftest import CA, ROOT, IssueFn, revoke
from tests.revocation.openssl_verify import Verifier

pytestmark = pytest.mark.interop


@pytest.fixture
def verifier(demo_pki: PKI, tmp_path: Path) -> Verifier:
    return Verifier(demo_pki, tmp_path)


def full(pki: PKI, label: str = CA) -> PublishedCRL:
    return next(c for c in pki.crls.publish(label, [CRLKind.FULL]) if c.info.kind is CRLKind.FULL)


def delta(pki: PKI) -> PublishedCRL:
    return pki.crls.publish(CA, [CRLKind.DELTA])[0]


def test_openssl_crl_check_accepts_good_and_refuses_revoked_and_held(
        demo_pki: PKI, issue: IssueFn, verifier: Verifier) -> None:
    good, stolen, lost = issue("good"), issue("stolen"), issue("lost")
    revoke(demo_pki, stolen, x509.ReasonFlags.key_compromise)
    revoke(demo_pki, lost, x509.ReasonFlags.certificate_hold)
    crl = full(demo_pki)
    assert verifier.run(good, [crl], "-crl_check")[0] == 0
    code, out = verifier.run(stolen, [crl], "-crl_check")
    assert code != 0 and "certificate revoked" in out
    code, out = verifier.run(lost, [crl], "-crl_check")
    assert code != 0 and "certificate revoked" in out


def test_openssl_crl_check_all_uses_the_root_crl_too(
        demo_pki: PKI, issue: IssueFn, verifier: Verifier) -> None:
    good = issue("good")
    leaf_crl, root_crl = full(demo_pki), full(demo_pki, ROOT)
    code, out = verifier.run(good, [leaf_crl, root_crl], "-crl_check_all")
    assert code == 0, out
    code, out = verifier.run(good, [leaf_crl], "-crl_check_all")
    assert code != 0 and "unable to get certificate CRL" in out


def test_openssl_applies_our_delta_crls(demo_pki: PKI, issue: IssueFn, verifier: Verifier) -> None:
    stolen, lost = issue("stolen"), issue("lost")
    revoke(demo_pki, lost, x509.ReasonFlags.certificate_hold)
    base = full(demo_pki)
    revoke(demo_pki, stolen, x509.ReasonFlags.key_compromise)
    assert verifier.run(stolen, [base], "-crl_check")[0] == 0  # the base alone is stale
    code, out = verifier.run(stolen, [base, delta(demo_pki)], "-crl_check", "-use_deltas")
    assert code != 0 and "certificate revoked" in out
    demo_pki.revocation.release(CA, lost.record.serial, "test")
    assert verifier.run(lost, [base], "-crl_check")[0] != 0
    code, out = verifier.run(lost, [base, delta(demo_pki)], "-crl_check", "-use_deltas")
    assert code == 0, out  # removeFromCRL in the delta lifts the base CRL's hold


@pytest.mark.parametrize("kind", [CRLKind.FULL, CRLKind.DELTA])
def test_pkilint_finds_no_error_in_our_crls(
        demo_pki: PKI, issue: IssueFn, tmp_path: Path, kind: CRLKind) -> None:
    held, stolen = issue("held"), issue("stolen")
    revoke(demo_pki, held, x509.ReasonFlags.certificate_hold)
    full(demo_pki)
    demo_pki.revocation.revoke(CA, stolen.record.serial, x509.ReasonFlags.key_compromise, "test",
                               invalidity_date=stolen.record.not_before)
    demo_pki.revocation.release(CA, held.record.serial, "test")
    crls = {c.info.kind: c for c in demo_pki.crls.publish(CA, [CRLKind.FULL, CRLKind.DELTA])}
    assert crls[kind].info.entries >= 1
    path = tmp_path / "crl.der"
    path.write_bytes(crls[kind].der)
    done = subprocess.run(["lint_crl", "lint", "-t", "CRL", "-p", "PKIX", "-s", "WARNING",
                           str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "ERROR" not in done.stdout and "FATAL" not in done.stdout, \
        done.stdout + done.stderr
