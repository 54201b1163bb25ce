"""RFC 9483 §4.3 (genm/genp), answers read with pyasn1 and `cryptography`: each request
type is answered under the info type the RFC names, with a value of the right shape."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder

from iotpki.wire.cmp.requests import genm_body
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.der import object_identifier as oid
from tests.cmp.rfc9483 import CA, Lab, Reply, refused

CA_CERTS, ROOT_CA_CERT, ROOT_CA_KEY_UPDATE = ("1.3.6.1.5.5.7.4.17", "1.3.6.1.5.5.7.4.20",
                                              "1.3.6.1.5.5.7.4.18")
CRL_STATUS_LIST, CRLS = "1.3.6.1.5.5.7.4.22", "1.3.6.1.5.5.7.4.23"
SIGN_KEY_PAIR_TYPES, EC_PUBLIC_KEY = "1.3.6.1.5.5.7.4.2", "1.2.840.10045.2.1"


def _infos(reply: Reply) -> list[tuple[str, bytes | None]]:
    assert reply.body == "genp", reply
    return [(str(i["infoType"]), bytes(i["infoValue"]) if i["infoValue"].isValue else None)
            for i in reply.message["body"]["genp"]]


def _genm(lab: Lab, *items: bytes) -> Reply:
    return lab.post(lab.mac_request("genm", tlv(SEQUENCE, b"".join(items))))


def _item(info_type: str, value: bytes = b"") -> bytes:
    return tlv(SEQUENCE, oid(info_type) + value)


def test_s4_3_1_ca_certs_is_the_ca_chain(lab: Lab) -> None:
    reply = lab.post(lab.mac_request("genm", genm_body([CA_CERTS])))
    [(info_type, value)] = _infos(reply)
    assert info_type == CA_CERTS and value is not None
    sequence, rest = decoder.decode(value)
    chain = [x509.load_der_x509_certificate(encoder.encode(c)) for c in sequence]
    assert rest == b"" and tuple(chain) == lab.pki.authorities.get(CA).full_chain


def test_s4_3_1_ca_certs_with_a_value_is_bad_request(lab: Lab) -> None:
    refused(lab, lab.mac_request("genm", tlv(SEQUENCE, _item(CA_CERTS, b"\x05\x00"))),
            "badRequest")


def test_s4_3_2_root_ca_cert_is_answered_with_root_ca_key_update(lab: Lab) -> None:
    root = lab.pki.authorities.get(CA).full_chain[-1]
    reply = _genm(lab, _item(ROOT_CA_CERT, root.public_bytes(serialization.Encoding.DER)))
    assert _infos(reply) == [(ROOT_CA_KEY_UPDATE, None)]  # the root has no new key


def test_s4_3_4_crl_status_list_is_answered_with_crls(lab: Lab) -> None:
    reply = _genm(lab, _item(CRL_STATUS_LIST, tlv(SEQUENCE, b"")))
    [(info_type, value)] = _infos(reply)
    assert info_type == CRLS and value is not None
    crls, rest = decoder.decode(value)
    assert rest == b"" and len(crls) == 1
    crl = x509.load_der_x509_crl(encoder.encode(crls[0]))
    assert crl.issuer == lab.pki.authorities.get(CA).certificate.subject


def test_rfc9810_s5_3_19_2_sign_key_pair_types_are_the_profiles(lab: Lab) -> None:
    reply = lab.post(lab.mac_request("genm", genm_body([SIGN_KEY_PAIR_TYPES])))
    [(info_type, value)] = _infos(reply)
    assert info_type == SIGN_KEY_PAIR_TYPES and value is not None
    algorithms, _ = decoder.decode(value)
    found = {str(a[0]) for a in algorithms}
    key_types = lab.pki.profiles["operational"].key_types
    assert found and (EC_PUBLIC_KEY in found) == any(k.startswith("ec-") for k in key_types)
