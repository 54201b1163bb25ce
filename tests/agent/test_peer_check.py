"""The device's peer check against a real server's OCSP responder and CRLs: a good peer of
our domain is accepted, another domain or a revoked peer refused; OCSP answers are cached
until their nextUpdate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography import x509

from iotpki.agent.keystore import MemoryKeyStore, PendingKey
from iotpki.agent.ocsp_cache import OCSPCache, RevocationChecker
from iotpki.agent.peer_check import PeerChecker
from iotpki.agent.revocation import CRLCache
from iotpki.agent.trust import Trust, certificate_fingerprint
from iotpki.app import PKI
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.wire.peer import PeerRejectedError, RevocationStatus
from tests.agent.conftest import CA, DOMAIN, ROOT, Servers
from tests.factories import domain_uri, make_csr
from tests.servers import ManualClock


def _peer(pki: PKI, name: str, domain: str = DOMAIN) -> Issued:
    csr, _ = make_csr(name, [domain_uri(domain)])
    outcome = pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(outcome, Issued), outcome
    return outcome


def wait_until_published(certificate: x509.Certificate, issuer: x509.Certificate) -> None:
    """The server's OCSP responder serves pre-signed answers, refreshed from the database
    by polling: wait until a revocation is visible there."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = OCSPCache()
        try:
            if probe(certificate, issuer) is RevocationStatus.REVOKED:
                return
        finally:
            probe.close()
        time.sleep(0.5)
    raise AssertionError("the revocation never reached the OCSP responder")


@pytest.fixture
def demo_pki(servers: Servers) -> PKI:
    """The PKI behind the module's server."""
    return servers.pki


@pytest.fixture
def checker(demo_pki: PKI, servers: Servers) -> Iterator[PeerChecker]:
    csr, key = make_csr("sensor-self", [domain_uri(DOMAIN)])
    own = demo_pki.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
    assert isinstance(own, Issued)
    store = MemoryKeyStore()
    store.install(PendingKey(key, "0001"), [own.certificate, *own.chain[:-1]])
    root = demo_pki.authorities.get(ROOT).certificate
    checking = PeerChecker(store, Trust([certificate_fingerprint(root)], [root]))
    yield checking
    checking.close()


def test_good_peer_of_our_domain(checker: PeerChecker, demo_pki: PKI) -> None:
    broker = _peer(demo_pki, "broker")
    accepted = checker.check([broker.certificate, *broker.chain[:-1]])
    assert accepted.domains == {DOMAIN}


def test_peer_of_another_domain_is_refused(checker: PeerChecker, demo_pki: PKI) -> None:
    demo_pki.organizations.add_domain("operatorco", "building-7.operator.example", "test")
    other = _peer(demo_pki, "broker-7", "building-7.operator.example")
    with pytest.raises(PeerRejectedError) as refused:
        checker.check([other.certificate, *other.chain[:-1]])
    assert refused.value.reason == "other-domain"


def test_revoked_peer_is_refused(checker: PeerChecker, demo_pki: PKI) -> None:
    broker = _peer(demo_pki, "broker-stolen")
    demo_pki.revocation.revoke(CA, broker.record.serial, x509.ReasonFlags.key_compromise, "t")
    wait_until_published(broker.certificate, demo_pki.authorities.get(CA).certificate)
    with pytest.raises(PeerRejectedError) as refused:
        checker.check([broker.certificate, *broker.chain[:-1]])
    assert refused.value.reason == "revoked"


def test_ocsp_answer_cached_until_next_update(demo_pki: PKI, servers: Servers,
                                              request: pytest.FixtureRequest) -> None:
    peer = _peer(demo_pki, "cached")
    issuer = demo_pki.authorities.get(CA).certificate
    clock = ManualClock()
    cache = OCSPCache(now=clock)
    request.addfinalizer(cache.close)
    assert cache(peer.certificate, issuer) is RevocationStatus.GOOD
    demo_pki.revocation.revoke(CA, peer.record.serial, x509.ReasonFlags.key_compromise, "t")
    assert cache(peer.certificate, issuer) is RevocationStatus.GOOD  # cached
    assert cache.fetches == 1
    clock.moment += timedelta(hours=5)  # past the cached nextUpdate (the responder gives 4 h)
    # never the stale GOOD: asked again, and the fresh answer (signed at the real time) is
    # itself past nextUpdate by this clock, so the status is unknown (fail closed)
    assert cache(peer.certificate, issuer) is RevocationStatus.UNKNOWN
    assert cache.fetches == 2
    wait_until_published(peer.certificate, issuer)  # what the responder says, uncached


def test_crl_fallback_when_no_ocsp_answer(demo_pki: PKI, servers: Servers) -> None:
    peer = _peer(demo_pki, "crl-only")
    issuer = demo_pki.authorities.get(CA).certificate

    class Silent(OCSPCache):
        def __call__(self, certificate: x509.Certificate,
                     issuer: x509.Certificate) -> RevocationStatus:
            return RevocationStatus.UNKNOWN

    checker = RevocationChecker(Silent(), CRLCache())
    assert checker(peer.certificate, issuer) is RevocationStatus.GOOD
