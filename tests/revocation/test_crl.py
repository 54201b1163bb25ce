"""Full and delta CRLs (RFC 5280 §5) built from the certificates index, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from iotpki.app import PKI
from iotpki.core.errors import ConfigurationError
from iotpki.core.revocation.crl import CRLPolicy, due_kinds
from iotpki.core.revocation.status import CRLInfo, CRLKind, PublishedCRL
from iotpki.settings import crl_policy_from
from tests.revocation.conftest import CA, IssueFn, revoke

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def load(crl: PublishedCRL) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(crl.der)


def entries(crl: PublishedCRL) -> dict[int, x509.ReasonFlags | None]:
    found = {}
    for entry in load(crl):
        try:
            found[entry.serial_number] = entry.extensions.get_extension_for_class(
                x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            found[entry.serial_number] = None
    return found


def publish(pki: PKI, *kinds: CRLKind) -> dict[CRLKind, PublishedCRL]:
    return {c.info.kind: c for c in pki.crls.publish(CA, list(kinds))}


def test_full_crl_lists_revoked_and_held_certificates_with_reasons(
        demo_pki: PKI, issue: IssueFn) -> None:
    good, lost, stolen = issue("good"), issue("lost"), issue("stolen")
    revoke(demo_pki, lost, x509.ReasonFlags.certificate_hold)
    revoke(demo_pki, stolen, x509.ReasonFlags.key_compromise)
    full = publish(demo_pki, CRLKind.FULL)[CRLKind.FULL]
    crl = load(full)
    ca = demo_pki.authorities.get(CA).certificate
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.subject
    assert entries(full) == {lost.record.serial: x509.ReasonFlags.certificate_hold,
                             stolen.record.serial: x509.ReasonFlags.key_compromise}
    assert good.record.serial not in entries(full)
    ext = crl.extensions
    assert ext.get_extension_for_class(x509.CRLNumber).value.crl_number == full.info.number
    idp = ext.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical
    freshest = ext.get_extension_for_class(x509.FreshestCRL).value
    assert freshest[0].full_name == [x509.UniformResourceIdentifier(
        f"{demo_pki.settings.public_url}/crl/{CA}-delta.crl")]


def test_release_leaves_the_next_full_crl_and_the_delta_says_remove_from_crl(
        demo_pki: PKI, issue: IssueFn) -> None:
    held = issue("held")
    revoke(demo_pki, held, x509.ReasonFlags.certificate_hold)
    base = publish(demo_pki, CRLKind.FULL)[CRLKind.FULL]
    assert held.record.serial in entries(base)
    demo_pki.revocation.release(CA, held.record.serial, "test")
    delta = publish(demo_pki, CRLKind.DELTA)[CRLKind.DELTA]
    assert entries(delta) == {held.record.serial: x509.ReasonFlags.remove_from_crl}
    indicator = load(delta).extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == base.info.number
    assert delta.info.number > base.info.number
    with_full = publish(demo_pki, CRLKind.FULL, CRLKind.DELTA)
    assert held.record.serial not in entries(with_full[CRLKind.FULL])


def test_delta_lists_changes_since_its_base_only(demo_pki: PKI, issue: IssueFn) -> None:
    before, after = issue("before"), issue("after")
    revoke(demo_pki, before, x509.ReasonFlags.superseded)
    base = publish(demo_pki, CRLKind.FULL)[CRLKind.FULL]
    revoke(demo_pki, after, x509.ReasonFlags.cessation_of_operation)
    delta = publish(demo_pki, CRLKind.DELTA)[CRLKind.DELTA]
    assert entries(delta) == {after.record.serial: x509.ReasonFlags.cessation_of_operation}
    assert delta.info.base_number == base.info.number
    assert load(delta).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == \
        delta.info.number


def test_full_and_delta_published_together_share_one_number(demo_pki: PKI) -> None:
    first = publish(demo_pki, CRLKind.FULL, CRLKind.DELTA)
    second = publish(demo_pki, CRLKind.FULL, CRLKind.DELTA)
    assert first[CRLKind.FULL].info.number == first[CRLKind.DELTA].info.number
    assert second[CRLKind.FULL].info.number == first[CRLKind.FULL].info.number + 1
    # The delta published with a new full CRL is based on the previous one (RFC 5280 §5.2.4).
    assert second[CRLKind.DELTA].info.base_number == first[CRLKind.FULL].info.number
    # §5.2.6: the freshest CRL pointer belongs to full CRLs only.
    delta_extensions = load(second[CRLKind.DELTA]).extensions
    assert all(not isinstance(e.value, x509.FreshestCRL) for e in delta_extensions)


def test_invalidity_date_goes_into_the_entry(demo_pki: PKI, issue: IssueFn) -> None:
    stolen = issue("stolen")
    when = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    demo_pki.revocation.revoke(CA, stolen.record.serial, x509.ReasonFlags.key_compromise,
                               "test", invalidity_date=when)
    full = publish(demo_pki, CRLKind.FULL)[CRLKind.FULL]
    entry = load(full).get_revoked_certificate_by_serial_number(stolen.record.serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(
        x509.InvalidityDate).value.invalidity_date_utc == when


def test_a_hold_made_permanent_keeps_its_revocation_date(demo_pki: PKI, issue: IssueFn) -> None:
    lost = issue("lost")
    revoke(demo_pki, lost, x509.ReasonFlags.certificate_hold)
    base = publish(demo_pki, CRLKind.FULL)[CRLKind.FULL]
    held_at = load(base).get_revoked_certificate_by_serial_number(lost.record.serial)
    revoke(demo_pki, lost, x509.ReasonFlags.key_compromise)
    delta = publish(demo_pki, CRLKind.DELTA)[CRLKind.DELTA]
    assert entries(delta) == {lost.record.serial: x509.ReasonFlags.key_compromise}
    revoked = load(delta).get_revoked_certificate_by_serial_number(lost.record.serial)
    assert held_at is not None and revoked is not None
    assert revoked.revocation_date_utc == held_at.revocation_date_utc


def test_publishing_when_due_only(demo_pki: PKI, issue: IssueFn) -> None:
    first = demo_pki.crls.publish(CA)
    assert [c.info.kind for c in first] == [CRLKind.FULL, CRLKind.DELTA]
    assert demo_pki.crls.publish(CA) == []  # nothing changed, nothing due


def _info(kind: CRLKind, number: int, seq: int, age: timedelta) -> CRLInfo:
    return CRLInfo(CA, kind, number, None, seq, NOW - age, NOW + timedelta(days=1), 0)


def test_due_kinds_follow_the_policy() -> None:
    # a full CRL after a change is test_full_crl_after_revocation's subject: out of the way
    policy = CRLPolicy(full_after_change=timedelta(hours=1))
    fresh_full = _info(CRLKind.FULL, 1, 5, timedelta(minutes=1))
    fresh_delta = _info(CRLKind.DELTA, 1, 5, timedelta(minutes=1))
    assert due_kinds(policy, NOW, None, None, 0) == [CRLKind.FULL, CRLKind.DELTA]
    assert due_kinds(policy, NOW, fresh_full, fresh_delta, 5) == []
    assert due_kinds(policy, NOW, fresh_full, fresh_delta, 6) == [CRLKind.DELTA]
    just_now = _info(CRLKind.DELTA, 2, 5, timedelta(seconds=1))
    assert due_kinds(policy, NOW, fresh_full, just_now, 6) == []  # debounced
    old_delta = _info(CRLKind.DELTA, 2, 5, timedelta(hours=2))
    assert due_kinds(policy, NOW, fresh_full, old_delta, 5) == [CRLKind.DELTA]
    old_full = _info(CRLKind.FULL, 1, 5, timedelta(days=2))
    assert due_kinds(policy, NOW, old_full, fresh_delta, 5) == [CRLKind.FULL, CRLKind.DELTA]


def test_crl_timing_comes_from_the_environment() -> None:
    variables = {"IOTPKI_CRL_VALIDITY": "3d", "IOTPKI_DELTA_CRL_INTERVAL": "2h"}
    policy = crl_policy_from(variables)
    assert policy.full_validity == timedelta(days=3)
    assert policy.delta_interval == timedelta(hours=2)
    assert policy.full_interval == CRLPolicy().full_interval
    with pytest.raises(ConfigurationError):
        crl_policy_from({**variables, "IOTPKI_CRL_INTERVAL": "3d"})


def test_next_update_follows_the_policy(demo_pki: PKI) -> None:
    full = publish(demo_pki, CRLKind.FULL, CRLKind.DELTA)
    policy = demo_pki.crls.policy
    for kind, validity in ((CRLKind.FULL, policy.full_validity),
                           (CRLKind.DELTA, policy.delta_validity)):
        crl = load(full[kind])
        assert crl.next_update_utc is not None
        assert crl.next_update_utc - crl.last_update_utc == validity


def test_the_scheduler_publishes_only_what_is_due(demo_pki: PKI, issue: IssueFn) -> None:
    crls = demo_pki.crls
    first = crls.publish_if_due(CA, 0)
    assert [c.info.kind for c in first] == [CRLKind.FULL, CRLKind.DELTA]
    assert crls.publish_if_due(CA, 0) == []
    stolen = issue("stolen")
    revoke(demo_pki, stolen, x509.ReasonFlags.key_compromise)
    demo_pki.ocsp.refresh_changes()
    assert demo_pki.ocsp.polled_counters()[CA] == 1
    crls.policy = CRLPolicy(debounce=timedelta(0))
    delta = crls.publish_if_due(CA, demo_pki.ocsp.polled_counters()[CA])
    assert [c.info.kind for c in delta] == [CRLKind.DELTA]
    assert stolen.record.serial in entries(delta[0])
