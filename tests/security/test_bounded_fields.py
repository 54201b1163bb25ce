"""Issue 15 item 2: unauthenticated input is bounded before it is logged, audited or
stored. An 8 MB HTTP Basic user name on EST and a 250 KB CMP senderKID each used to write
megabytes into one audit row and one event; now the row keeps a kilobyte, a marker with
the original length and the SHA-256 of the whole value."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime

from iotpki.core.audit.bounds import FIELD_LIMIT, bounded, bounded_value
from iotpki.core.audit.log import AuditRecord, verify_audit_chain
from iotpki.core.events import Event
from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg, encode_mac_request
from iotpki.wire.cmp.protection import MACProtection, PBMParameters
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.names import parse_subject
from tests.security.conftest import Listeners
from tests.security.test_total_decoders import csr

MEGABYTES = 8 * 1024 * 1024
SHA256, HMAC_SHA256 = "2.16.840.1.101.3.4.2.1", "1.2.840.113549.2.9"


def _audit_size(listeners: Listeners) -> int:
    return max(len(json.dumps(d, default=str)) for d in listeners.audit_details())


def _event_payload_size(listeners: Listeners) -> int:
    events = listeners.pki.database.unit_of_work
    with events() as uow:
        stored = uow.events.undispatched(10_000)
    return max(len(json.dumps(dict(e.payload), default=str)) for e in stored)


def test_est_basic_user_name_of_8_mb_writes_a_bounded_audit_row(listeners: Listeners) -> None:
    """RFC 7617 §2: the user-id is the client's; an 8 MB one must not reach the log whole."""
    name = "A" * MEGABYTES
    answer = listeners.https.post(
        "/.well-known/est/simpleenroll", content=base64.b64encode(csr()), auth=(name, "s"),
        headers={"Content-Type": "application/pkcs10"})
    assert answer.status_code in (401, 403)
    assert _audit_size(listeners) < 8 * FIELD_LIMIT
    digest = hashlib.sha256(name.encode()).hexdigest()
    assert any(digest in json.dumps(d) for d in listeners.audit_details())
    assert _event_payload_size(listeners) < 8 * FIELD_LIMIT
    verify_audit_chain(*_chain(listeners))


def _chain(listeners: Listeners) -> tuple[list[object], object]:
    with listeners.pki.database.unit_of_work() as uow:
        return list(uow.audit.entries()), uow.audit.head()  # type: ignore[return-value]


def test_cmp_sender_kid_of_250_kb_writes_a_bounded_audit_row(listeners: Listeners) -> None:
    """RFC 9483 §3.2: senderKID names the shared secret's reference; 250 KB of it is
    refused (no such registration) and audited in a kilobyte."""
    protector = MACProtection(b"guess", PBMParameters(os.urandom(16), SHA256, 1000,
                                                      HMAC_SHA256))
    kid = os.urandom(250 * 1024)
    request = encode_keygen_cert_req_msg(parse_subject("CN=x"))
    der = encode_mac_request("ir", tlv(SEQUENCE, request), protector, kid, datetime.now(UTC))
    answer = listeners.http.post("/.well-known/cmp", content=der,
                                 headers={"Content-Type": "application/pkixcmp"})
    assert answer.status_code < 500
    assert _audit_size(listeners) < 8 * FIELD_LIMIT
    assert _event_payload_size(listeners) < 8 * FIELD_LIMIT


def test_bounded_keeps_short_values_and_marks_long_ones() -> None:
    assert bounded("short") == "short"
    long = "x" * (FIELD_LIMIT + 1)
    marked = bounded(long)
    assert marked.startswith("x" * FIELD_LIMIT) and str(FIELD_LIMIT + 1) in marked
    assert hashlib.sha256(long.encode()).hexdigest() in marked
    assert bounded("y" * (FIELD_LIMIT + 1)) != marked  # distinct values stay distinct
    nested = bounded_value({"a": [{"b": long}] * 500, "c": 3})
    assert len(json.dumps(nested)) < 200 * FIELD_LIMIT and nested["c"] == 3
    assert len(nested["a"]) == 101


def test_audit_and_event_constructors_bound_on_the_way_in() -> None:
    event = Event("enrollment.refused", datetime.now(UTC), {"requester": "z" * MEGABYTES})
    assert len(event.payload["requester"]) < 2 * FIELD_LIMIT
    from iotpki.core.audit.log import GENESIS, AuditHead, chain_entry
    entry = chain_entry(AuditHead(0, GENESIS), datetime.now(UTC),
                        AuditRecord("est.request", "refused", "q" * MEGABYTES, "-"))
    assert len(entry.record.actor) < 2 * FIELD_LIMIT


def test_bounded_audit_fields_fit_the_store_columns(pki: object) -> None:
    """actor is VARCHAR(255) and target VARCHAR(1024): PostgreSQL refuses longer values."""
    from iotpki.core.audit.log import append_audit
    record = AuditRecord("est.request", "refused", "a" * MEGABYTES, "t" * MEGABYTES)
    with pki.database.unit_of_work() as uow:  # type: ignore[attr-defined]
        entry = append_audit(uow.audit, datetime.now(UTC), record)
        uow.commit()
    assert len(entry.record.actor) <= 255 and len(entry.record.target) <= 1024
