"""device-attest-01 (draft-ietf-acme-device-attest) for `permanent-identifier` identifiers:
the device answers with an attestation object whose statement its previous-stage key signed
(`wire.acme.attestation`, one plug-in per format). The challenge is valid only if

1. the statement verifies (possession of the previous-stage key, over the key authorization);
2. the attested certificate names the identifier (its subject serialNumber, else its CN);
3. the previous-stage enrollment method accepts that identity for the endpoint's authority
   and profile: it chains to a supplier anchor the CA's organization trusts, is not revoked,
   and a registration names it (`core.ra.enrollment.PreviousStageCertificate`), the same
   decision EST and CMP make.

Finalize then enrolls with that method (the registration decides subject and SANs, and is
consumed by the issuance).

Renewal: the registration is consumed by the first certificate, so a device that enrolled
renews with the format `current-certificate` (same statement, signed by the key of its
current certificate). Step 3 is then the current-certificate method of EST and CMP renewal
(`core.ra.enrollment.CurrentCertificate`): the certificate was issued here by the endpoint's
authority, is good (not revoked or held, not expired beyond the profile's grace), is the
newest of its identity, its key was never revoked for keyCompromise, and its device is in
service. Finalize renews with that method: the subject and SANs of the current certificate.
Which method a format stands for is the `methods` map given with the formats.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from iotpki.core.errors import PolicyError
from iotpki.core.errors import RefusalReason as R
from iotpki.core.methods import MethodName
from iotpki.core.ra.enrollment import EnrollmentRequest, EnrollmentService
from iotpki.protocols.acme.problems import PROBLEM_FOR_REASON
from iotpki.protocols.acme.validation import ChallengeFailed, ChallengeInput, Evidence
from iotpki.wire.acme.attestation import (
    AttestationError,
    AttestationFormat,
    CurrentCertificateFormat,
    decode_attestation_response,
    permanent_identifier,
)

POSSESSION = "acme-device-attest-01"  # how possession was proven, as enrollment records it
# The enrollment method each format's statement is decided by (default: previous stage).
FORMAT_METHODS = {CurrentCertificateFormat.name: MethodName.CURRENT_CERTIFICATE}


class DeviceAttest01:
    def __init__(self, formats: Mapping[str, AttestationFormat],
                 enrollment: EnrollmentService,
                 methods: Mapping[str, MethodName] = FORMAT_METHODS) -> None:
        self._formats = formats
        self._enrollment = enrollment
        self._methods = methods

    def __call__(self, challenge: ChallengeInput) -> Evidence:
        try:
            attestation = decode_attestation_response(challenge.payload)
            verifier = self._formats.get(attestation.fmt)
            if verifier is None:
                raise AttestationError(f"attestation format {attestation.fmt!r} is not "
                                       f"supported (have: {', '.join(sorted(self._formats))})")
            chain = verifier.verify(attestation.statement, attestation.auth_data,
                                    challenge.key_authorization)
        except AttestationError as exc:
            raise ChallengeFailed("badAttestationStatement", exc.detail,
                                  R.POSSESSION_NOT_PROVEN) from exc
        named = permanent_identifier(chain[0])
        if named != challenge.identifier.value:
            raise ChallengeFailed("badAttestationStatement", f"the attested certificate names "
                                  f"{named!r}, not {challenge.identifier.value!r}",
                                  R.IDENTITY_MISMATCH)
        method = self._methods.get(attestation.fmt, MethodName.PREVIOUS_STAGE)
        try:
            self._enrollment.check(self.request(challenge, chain), method)
        except PolicyError as refusal:
            raise ChallengeFailed(PROBLEM_FOR_REASON[refusal.reason], refusal.detail,
                                  refusal.reason) from refusal
        return Evidence(tuple(c.public_bytes(Encoding.DER) for c in chain), method.value)

    @staticmethod
    def request(challenge: ChallengeInput, chain: tuple[x509.Certificate, ...],
                csr: bytes = b"") -> EnrollmentRequest:
        return EnrollmentRequest(csr, f"acme:{challenge.identifier.value}", client_chain=chain,
                                 possession=POSSESSION, authority=challenge.authority,
                                 profile=challenge.profile)
