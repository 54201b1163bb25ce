"""Issue 15 item 14: requests without credentials must not fill the manual-approval queue.
A client address may submit 10 requests a minute (then 429, RFC 6585 §4), and at most 1000
requests per authority and profile wait for an operator (then 429 too). Over EST's
`components` endpoint (one-time-secret, manual-approval; RFC 7030 §4.2.3: 202 while
pending), in process, and on the core with a small cap."""

from __future__ import annotations

import base64

import pytest

from iotpki.app import PKI
from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.ra.approval import ApprovalLimits, ManualApproval
from tests.factories import make_csr
from tests.security.conftest import Listeners


def submit(listeners: Listeners, client: str, name: str) -> tuple[int, str]:
    """The request without credentials, challenged (RFC 7030 §3.2.3), then sent again."""
    listeners.https.set_client(client)
    csr = base64.b64encode(make_csr(name)[0])
    for _ in range(2):
        answer = listeners.https.post("/.well-known/est/components/simpleenroll", content=csr,
                                      headers={"Content-Type": "application/pkcs10"})
        if answer.status_code != 401:
            break
    return answer.status_code, answer.text


def test_one_client_cannot_fill_the_queue(listeners: Listeners) -> None:
    limit = ApprovalLimits().per_client
    for index in range(limit):
        assert submit(listeners, "203.0.113.9", f"chip-{index}")[0] == 202
    # Past its rate the client's challenges are no longer remembered (RFC 7030 §3.2.3): it
    # is asked for credentials each time and nothing more of it is queued.
    status, text = submit(listeners, "203.0.113.9", "chip-over")
    assert status == 401 and text == ""
    assert submit(listeners, "203.0.113.10", "chip-other")[0] == 202
    assert len(listeners.pki.enrollment.approval.find()) == limit + 1


def test_one_client_cannot_submit_past_its_rate(demo_pki: PKI) -> None:
    """Where requests are queued without a challenge (an endpoint with manual approval
    only, CMP), the submissions of one client are limited: 429 too-many-attempts."""
    approval = ManualApproval(demo_pki.database.unit_of_work, demo_pki.issuance, demo_pki.clock,
                              ApprovalLimits(per_client=2))
    for index in range(2):
        approval.submit(make_csr(f"r-{index}")[0], "chipco-components", "component", "x", None,
                        "192.0.2.50")
    with pytest.raises(PolicyError) as refused:
        approval.submit(make_csr("r-over")[0], "chipco-components", "component", "x", None,
                        "192.0.2.50")
    assert refused.value.reason is R.TOO_MANY_ATTEMPTS


def test_the_queue_per_authority_and_profile_is_capped(demo_pki: PKI) -> None:
    approval = ManualApproval(demo_pki.database.unit_of_work, demo_pki.issuance, demo_pki.clock,
                              ApprovalLimits(pending_per_label=5, per_client=1000))
    ids = [approval.submit(make_csr(f"c-{i}")[0], "chipco-components", "component", "x",
                           None, f"192.0.2.{i}").request_id for i in range(5)]
    with pytest.raises(PolicyError) as refused:
        approval.submit(make_csr("c-over")[0], "chipco-components", "component", "x", None,
                        "192.0.2.99")
    assert refused.value.reason is R.APPROVAL_QUEUE_FULL
    # Another authority's queue is its own; a decision makes room.
    approval.submit(make_csr("d-1")[0], "deviceco-devices", "device", "x", None, "192.0.2.1")
    approval.reject(ids[0], "operator", "unknown chip")
    approval.submit(make_csr("c-again")[0], "chipco-components", "component", "x", None,
                    "192.0.2.98")
