"""Manifests: export the organization's identities to the next stage, import a supplier's."""

from __future__ import annotations

import base64
import binascii
import uuid

from fastapi import APIRouter
from starlette.responses import Response

from iotpki.core.ca.certificate import CertificateRecord, CertificateStatus
from iotpki.core.ca.ports import CertificateQuery
from iotpki.core.ca.profile import parse_duration
from iotpki.core.errors import ConfigurationError, NotFoundError
from iotpki.core.integration.access import Action, authorize
from iotpki.core.integration.principal import Principal
from iotpki.core.supply_chain.manifests import ImportTarget
from iotpki.protocols.rest.context import (
    APIServices,
    CurrentPrincipal,
    IdempotencyKey,
    Services,
    request_hash,
    run_idempotent,
)
from iotpki.protocols.rest.directory import owned_authority
from iotpki.protocols.rest.models import (
    ManifestExport,
    ManifestExported,
    ManifestImport,
    ManifestImported,
)
from iotpki.protocols.rest.problems import WRITE_PROBLEMS

router = APIRouter(tags=["manifests"], responses=WRITE_PROBLEMS)
MAX_EXPORT = 1_000_000


def _identities(api: APIServices, principal: Principal,
                body: ManifestExport) -> list[CertificateRecord]:
    owned_authority(api, principal.organization, body.authority)
    if body.fingerprints is None:
        return api.certificates.find(CertificateQuery(
            authority=body.authority, status=CertificateStatus.GOOD, profile=body.profile,
            limit=MAX_EXPORT))
    records = []
    for fingerprint in body.fingerprints:
        try:
            record = api.certificates.get_by_fingerprint(fingerprint)
        except NotFoundError:
            raise NotFoundError(f"no certificate {fingerprint} of {body.authority}") from None
        if record.authority != body.authority:
            raise NotFoundError(f"no certificate {fingerprint} of {body.authority}")
        records.append(record)
    return records


@router.post("/manifests/export", status_code=201, response_model=ManifestExported)
def export_manifest(body: ManifestExport, principal: CurrentPrincipal, api: Services,
                    key: IdempotencyKey = None) -> Response:
    """Sign (CMS SignedData) a manifest of the organization's good certificates for
    `recipient`."""
    authorize(principal, Action.REGISTER)

    def export() -> ManifestExported:
        records = _identities(api, principal, body)
        delivery_id = body.delivery_id or str(uuid.uuid4())
        signed = api.manifests.export(principal.organization, body.recipient, records,
                                      principal.actor, parse_duration(body.lifetime),
                                      delivery_id)
        return ManifestExported(delivery_id=delivery_id, entries=len(records),
                                manifest=base64.b64encode(signed).decode())

    return run_idempotent(api, principal, key, request_hash("export_manifest", body), 201,
                          export)


@router.post("/manifests/import", status_code=201, response_model=ManifestImported)
def import_manifest(body: ManifestImport, principal: CurrentPrincipal, api: Services,
                    key: IdempotencyKey = None) -> Response:
    """Verify a supplier's manifest addressed to the organization and register every
    identity on it, in one transaction. A refusal (bad signature, untrusted supplier,
    replay, ...) is a 422 problem with its `reason`, and is audited."""
    authorize(principal, Action.REGISTER)
    owned_authority(api, principal.organization, body.authority)
    try:
        data = base64.b64decode(body.manifest, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"manifest is not valid base64: {exc}") from None
    target = ImportTarget(body.authority, body.profile, parse_duration(body.lifetime),
                          body.domain)

    def run() -> ManifestImported:
        result = api.manifests.import_manifest(principal.organization, data, target,
                                               principal.actor)
        return ManifestImported(delivery_id=result.delivery_id, sender=result.sender,
                                entries=result.entries)

    return run_idempotent(api, principal, key, request_hash("import_manifest", body), 201, run)
