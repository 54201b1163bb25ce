"""RFC 9483 §4.1.6.1/§4.1.6.2: a centrally generated key goes only to a requester whose
protection certificate permits the technique (keyAgreement for EC key agreement); a
signer without it is refused before any key is made or certificate issued."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.outcomes import Issued
from iotpki.wire.cmp.client_requests import encode_keygen_cert_req_msg
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.names import parse_subject
from tests.cmp.rfc9483 import CA, Identity, Lab, new_key, refused


def _signing_only_identity(lab: Lab) -> Identity:
    """An EC certificate of this CA whose keyUsage is digitalSignature alone (profile
    `authorization`)."""
    key = new_key()
    csr = (x509.CertificateSigningRequestBuilder().subject_name(parse_subject("CN=grant-1"))
           .add_extension(x509.SubjectAlternativeName(
               [x509.UniformResourceIdentifier("urn:iotpki:grant:1")]), False)
           .sign(key, hashes.SHA256()))
    outcome = lab.pki.issuance.issue(IssuanceRequest(
        CA, "authorization", csr.public_bytes(serialization.Encoding.DER), "test"))
    assert isinstance(outcome, Issued), outcome
    usage = outcome.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_agreement
    return Identity(key, outcome.certificate, lab.pki.authorities.get(CA).full_chain)


def test_s4_1_6_2_key_agreement_needs_key_agreement_in_the_signer(lab: Lab) -> None:
    identity = _signing_only_identity(lab)
    request = encode_keygen_cert_req_msg(identity.certificate.subject)
    refused(lab, lab.signed(identity, "cr", tlv(SEQUENCE, request)), "notAuthorized")


def test_s4_1_6_2_a_signer_with_key_agreement_gets_its_key(lab: Lab) -> None:
    identity = lab.enroll()
    request = encode_keygen_cert_req_msg(identity.certificate.subject)
    reply = lab.post(lab.signed(identity, "cr", tlv(SEQUENCE, request), implicit_confirm=True))
    assert (reply.body, reply.status) == ("cp", 0), reply
