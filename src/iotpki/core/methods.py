"""The names of the ways a certificate request is authorized, and the one rule that picks an
endpoint's enrollment method for a request (EST, CMP and any later protocol).

An endpoint lists its enrollment methods in order (`core.ra.endpoints`); the first whose
credentials the request carries is used (`EnrollmentMethod.applies`). Each method then
decides for itself (`core.ra.enrollment`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum


class MethodName(StrEnum):
    # Enrollment methods: how a request from a device proves it may be served.
    PREVIOUS_STAGE = "previous-stage-certificate"  # the identity of its previous stage
    CURRENT_CERTIFICATE = "current-certificate"  # renewal with the certificate it holds
    ONE_TIME_SECRET = "one-time-secret"  # a registration's secret (HTTP Basic, CMP MAC)
    MANUAL_APPROVAL = "manual-approval"  # an operator decides; the client polls
    # Not enrollment methods: issuances authorized otherwise, named in audit and events.
    DIRECT = "direct"  # a caller with issuing rights (library, REST)
    OPERATOR = "cli"  # the operator at the console
    INTERNAL = "internal"  # the service's own certificates (`core.ca.service_certificates`)
    ACME = "acme"  # an ACME order whose authorizations the account's challenges satisfied


ENROLLMENT_METHODS = (MethodName.PREVIOUS_STAGE, MethodName.CURRENT_CERTIFICATE,
                      MethodName.ONE_TIME_SECRET, MethodName.MANUAL_APPROVAL)


def enrollment_method(text: str) -> MethodName:
    """The enrollment method named `text`; ValueError for anything else."""
    method = MethodName(text)
    if method not in ENROLLMENT_METHODS:
        raise ValueError(f"{text!r} is not an enrollment method")
    return method


def select_method(allowed: Sequence[MethodName],
                  applies: Callable[[MethodName], bool]) -> MethodName | None:
    """The first of `allowed` that applies to the request; None if none does."""
    return next((m for m in allowed if applies(m)), None)
