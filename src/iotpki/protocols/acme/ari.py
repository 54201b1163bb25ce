"""ACME Renewal Information (RFC 9773): `GET <renewalInfo>/<certID>` answers the suggested
window (§4.2) with `Retry-After` (§4.3); `replaces` in newOrder (§5) names the certificate an
order renews. A certificate id is base64url(AKI keyIdentifier) "." base64url(serial) (§4.1).
"""

from __future__ import annotations

from iotpki.core.ca.certificate import CertificateRecord
from iotpki.core.lifecycle.renewal_info import RenewalInfo
from iotpki.core.ra.acme_state import ACMEState
from iotpki.core.ra.endpoints import Endpoint
from iotpki.protocols.acme.problems import ACMEProblem, NotFound
from iotpki.protocols.acme.resources import Links, timestamp
from iotpki.protocols.acme.server import ACMEAnswer, ACMEServer
from iotpki.wire.acme.jws import JWSError
from iotpki.wire.acme.messages import decode_ari_certificate_id

RETRY_AFTER = 6 * 3600  # §4.3: how long a client should wait before asking again


def certificate_of(state: ACMEState, certificate_id: str) -> CertificateRecord | None:
    """The certificate an RFC 9773 id names; `ACMEProblem(malformed)` if it is not one."""
    try:
        key_id, serial = decode_ari_certificate_id(certificate_id)
    except JWSError as exc:
        raise ACMEProblem("malformed", f"certificate id: {exc.detail}") from exc
    return state.certificate_by_key_id(key_id, serial)


class ACMERenewalInfo:
    def __init__(self, server: ACMEServer, renewal: RenewalInfo) -> None:
        self._state = server.state
        self._renewal = renewal
        server.on_get("renewal-info", self.get)

    def get(self, endpoint: Endpoint, links: Links, rest: tuple[str, ...]) -> ACMEAnswer:
        if len(rest) != 1:
            raise NotFound("GET renewal-info/<certID> (RFC 9773 §4.1)")
        record = certificate_of(self._state, rest[0])
        if record is None:
            raise NotFound("no certificate of this server has that id")
        window = self._renewal.window(record)
        body = {"suggestedWindow": {"start": timestamp(window.start),
                                    "end": timestamp(window.end)}}
        return ACMEAnswer(200, body, headers={"Retry-After": str(RETRY_AFTER)})
