"""RFC 9483 §4.3 (genm/genp), answers read with pyasn1 and `cryptography`: each request
type is answered under the info type the RFC names, with a value of the right shape."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import useful
from pyasn1_alt_modules import rfc5280, rfc9480

from iotpki.app import build_pki
from iotpki.core.ca.issuance import IssuanceRequest
from iotpki.core.ca.urls import PublicURLs
from iotpki.core.outcomes import Issued
from iotpki.protocols.cmp.general import GeneralMessages
from iotpki.wire.cmp.requests import genm_body
from iotpki.wire.der import SEQUENCE, tlv
from iotpki.wire.der import object_identifier as oid
from tests.cmp.rfc9483 import CA, DOMAIN, Lab, Reply, refused
from tests.factories import domain_uri, make_csr

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


def crl_status_list(*sources: tuple[str, object], this_update: datetime | None = None) -> bytes:
    """A CRLStatusListValue built with pyasn1's RFC 9480 module: ("uri", text) for a dpn
    fullName, ("issuer", x509.Name) for an issuer source."""
    value = rfc9480.CRLStatusListValue()
    for kind, source in sources:
        status = rfc9480.CRLStatus()
        if kind == "uri":
            name = rfc5280.GeneralName()
            name["uniformResourceIdentifier"] = source
            status["source"]["dpn"]["fullName"].append(name)
        else:
            assert isinstance(source, x509.Name)
            name, _ = decoder.decode(source.public_bytes(), asn1Spec=rfc5280.Name())
            general = rfc5280.GeneralName()
            general["directoryName"]["rdnSequence"] = name["rdnSequence"]
            status["source"]["issuer"].append(general)
        if this_update is not None:
            status["thisUpdate"]["generalTime"] = useful.GeneralizedTime(
                this_update.strftime("%Y%m%d%H%M%SZ"))
        value.append(status)
    return encoder.encode(value)


def _crls(reply: Reply) -> list[x509.CertificateRevocationList] | None:
    [(info_type, value)] = _infos(reply)
    assert info_type == CRLS
    if value is None:
        return None
    crls, rest = decoder.decode(value)
    assert rest == b""
    return [x509.load_der_x509_crl(encoder.encode(c)) for c in crls]


def test_s4_3_4_an_issuer_source_is_answered_with_the_cas_crl(lab: Lab) -> None:
    subject = lab.pki.authorities.get(CA).certificate.subject
    crls = _crls(_genm(lab, _item(CRL_STATUS_LIST, crl_status_list(("issuer", subject)))))
    assert crls is not None and len(crls) == 1 and crls[0].issuer == subject


def test_s4_3_4_a_dpn_source_is_answered_with_the_crl_at_that_uri(lab: Lab) -> None:
    uri = f"{lab.pki.settings.public_url}/crl/{CA}.crl"
    crls = _crls(_genm(lab, _item(CRL_STATUS_LIST, crl_status_list(("uri", uri)))))
    assert crls is not None and len(crls) == 1
    assert crls[0].issuer == lab.pki.authorities.get(CA).certificate.subject


def test_s4_3_4_a_client_whose_crl_is_current_gets_no_value(lab: Lab) -> None:
    """§4.3.4: only CRLs newer than the client's thisUpdate; none newer: infoValue absent."""
    subject = lab.pki.authorities.get(CA).certificate.subject
    first = _crls(_genm(lab, _item(CRL_STATUS_LIST, crl_status_list(("issuer", subject)))))
    assert first is not None
    held = first[0].last_update_utc
    assert _crls(_genm(lab, _item(CRL_STATUS_LIST, crl_status_list(
        ("issuer", subject), this_update=held)))) is None
    older = _crls(_genm(lab, _item(CRL_STATUS_LIST, crl_status_list(
        ("issuer", subject), this_update=held - timedelta(days=1)))))
    assert older is not None and older[0].public_bytes(serialization.Encoding.DER) == \
        first[0].public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("value", [
    None,  # the value is mandatory
    tlv(SEQUENCE, b""),  # SIZE (1..MAX)
    b"\x30\x03\x02\x01\x01",  # not a CRLStatus
    b"\x30\x04\x30\x02\xa2\x00",  # a CRLSource of neither choice
], ids=["absent", "empty", "not-crl-status", "bad-source"])
def test_s4_3_4_a_malformed_crl_status_list_is_bad_request(lab: Lab, value: bytes | None) -> None:
    refused(lab, lab.mac_request("genm", tlv(SEQUENCE, _item(CRL_STATUS_LIST, value or b""))),
            "badRequest")


def test_s4_3_4_a_source_that_is_not_this_cas_is_bad_request(lab: Lab) -> None:
    other = x509.Name.from_rfc4514_string("CN=Someone Else's CA")
    for source in [("issuer", other), ("uri", "http://elsewhere.example/crl/x.crl"),
                   ("uri", f"{lab.pki.settings.public_url}/crl/{CA}.99999.crl")]:
        refused(lab, lab.mac_request("genm", tlv(SEQUENCE, _item(
            CRL_STATUS_LIST, crl_status_list(source)))), "badRequest")


def test_rfc9810_s5_3_19_2_sign_key_pair_types_are_the_profiles(lab: Lab) -> None:
    reply = lab.post(lab.mac_request("genm", genm_body([SIGN_KEY_PAIR_TYPES])))
    [(info_type, value)] = _infos(reply)
    assert info_type == SIGN_KEY_PAIR_TYPES and value is not None
    algorithms, _ = decoder.decode(value)
    found = {str(a[0]) for a in algorithms}
    key_types = lab.pki.profiles["operational"].key_types
    assert found and (EC_PUBLIC_KEY in found) == any(k.startswith("ec-") for k in key_types)


def test_s4_3_4_a_dpn_source_naming_a_crl_shard_gets_that_shards_crl(lab: Lab) -> None:
    """With sharded CRLs (RFC 5280 §5.2.5) a certificate's CDP names its shard; a client
    asking by that URI gets the shard's CRL, whose issuingDistributionPoint names it."""
    lab.pki.authorities.set_crl_sharding(CA, timedelta(days=7), "test")
    node = build_pki(lab.pki.settings, migrate=False)  # nodes read the setting on first use
    try:
        csr, _ = make_csr("sensor-sharded", [domain_uri(DOMAIN)])
        issued = node.issuance.issue(IssuanceRequest(CA, "operational", csr, "test"))
        assert isinstance(issued, Issued)
        cdp = issued.certificate.extensions.get_extension_for_class(
            x509.CRLDistributionPoints).value
        [uri] = [name.value for point in cdp for name in point.full_name or ()]
        general = GeneralMessages(node.crls, node.crl_distribution,
                                  PublicURLs(node.settings.public_url))
        [(info_type, value)] = general.answer(
            (CRL_STATUS_LIST,), node.authorities.get(CA), None, (crl_status_list(("uri", uri)),))
    finally:
        node.close()
    assert info_type == CRLS and value is not None
    crls, _ = decoder.decode(value)
    [crl] = [x509.load_der_x509_crl(encoder.encode(c)) for c in crls]
    scope = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    assert uri in [name.value for name in scope.full_name or ()] and f"{CA}." in uri
