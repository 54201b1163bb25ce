"""One refusal vocabulary: every refusal of the core carries a `RefusalReason`, and each
protocol maps every reason to its wire form (RFC 9810 §5.2.3 PKIFailureInfo for CMP,
RFC 7030 §4.2.3 HTTP status for EST, RFC 9457 problem kind for REST, RFC 8894 §3.2.1.4
failInfo for SCEP, RFC 8555 §6.7 error type for ACME, RFC 5272 §6.1.4 CMCFailInfo for
CMC). A reason added
without its wire forms fails here, instead of falling through to a generic error."""

from __future__ import annotations

import pytest

from iotpki.core.errors import PolicyError, RefusalReason
from iotpki.core.ra.key_delivery import KeyDeliveryError
from iotpki.core.supply_chain.manifests import ManifestRefused
from iotpki.protocols.acme.problems import PROBLEM_FOR_REASON
from iotpki.protocols.cmc.refusals import FAIL_INFO_FOR_REASON as CMC_FAIL_INFO
from iotpki.protocols.cmp.refusals import FAILURE_FOR_REASON
from iotpki.protocols.est.routes import STATUS_FOR_REASON
from iotpki.protocols.rest.problems import KIND_FOR_REASON, KINDS
from iotpki.protocols.scep.refusals import FAIL_INFO_FOR_REASON
from iotpki.wire.acme.messages import PROBLEM_TYPES
from iotpki.wire.cmc.response import FAIL_INFO
from iotpki.wire.cmp.responses import FAILURE_BITS
from iotpki.wire.scep.attributes import FailInfo


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_reason_has_a_cmp_failure_bit(reason: RefusalReason) -> None:
    assert FAILURE_FOR_REASON[reason] in FAILURE_BITS


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_reason_has_an_est_status(reason: RefusalReason) -> None:
    assert STATUS_FOR_REASON[reason] in (400, 401, 403, 429, 500, 503)


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_reason_has_a_cmc_fail_info(reason: RefusalReason) -> None:
    """RFC 5272 §6.1.4: a failed CMCStatusInfoV2 carries a CMCFailInfo."""
    assert CMC_FAIL_INFO[reason] in FAIL_INFO


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_reason_has_a_rest_problem(reason: RefusalReason) -> None:
    assert KINDS[KIND_FOR_REASON[reason]][0] == 422


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_reason_has_a_scep_fail_info(reason: RefusalReason) -> None:
    """RFC 8894 §3.2.1.4: a CertRep FAILURE carries one of five failInfo values."""
    assert FAIL_INFO_FOR_REASON[reason] in set(FailInfo)


@pytest.mark.parametrize("reason", list(RefusalReason))
def test_every_reason_has_an_acme_error_type(reason: RefusalReason) -> None:
    """RFC 8555 §6.7: every ACME refusal is a problem document with an ACME error type."""
    assert PROBLEM_FOR_REASON[reason] in PROBLEM_TYPES


def test_maps_name_nothing_else() -> None:
    for mapping in (FAILURE_FOR_REASON, STATUS_FOR_REASON, KIND_FOR_REASON,
                    FAIL_INFO_FOR_REASON, PROBLEM_FOR_REASON, CMC_FAIL_INFO):
        assert set(mapping) == set(RefusalReason)


def test_an_unknown_revocation_status_is_a_temporary_refusal() -> None:
    """The supplier's CRL cannot be fetched: refused (fail closed), retry later."""
    assert FAILURE_FOR_REASON[RefusalReason.REVOCATION_UNKNOWN] == "systemUnavail"
    assert STATUS_FOR_REASON[RefusalReason.REVOCATION_UNKNOWN] == 503
    assert CMC_FAIL_INFO[RefusalReason.REVOCATION_UNKNOWN] == "tryLater"


def test_every_refusal_is_a_policy_error() -> None:
    for refusal in (ManifestRefused(RefusalReason.REPLAYED, "seen before"),
                    KeyDeliveryError(RefusalReason.KEY_NOT_ALLOWED, "no such key")):
        assert isinstance(refusal, PolicyError)
        assert isinstance(refusal.reason, RefusalReason)
    assert str(ManifestRefused(RefusalReason.REPLAYED, "seen before")) == "replayed: seen before"
