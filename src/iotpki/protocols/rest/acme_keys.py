"""ACME External Account Binding keys (RFC 8555 §7.3.4) for the principal's organization:
an ACME account created with one is bound to the organization (docs/acme.md)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from iotpki.core.integration.access import Action, authorize
from iotpki.protocols.rest.context import (
    CurrentPrincipal,
    IdempotencyKey,
    Services,
    request_hash,
    run_idempotent,
)
from iotpki.protocols.rest.models import Strict
from iotpki.protocols.rest.problems import WRITE_PROBLEMS

router = APIRouter(tags=["acme"])


class EABKeyCreate(Strict):
    label: str | None = Field(default=None, min_length=1, max_length=63,
                              description="Only for this ACME endpoint label (default: any)")


class EABKeyCreated(BaseModel):
    key_id: str = Field(description="The EAB key identifier (`kid`)")
    hmac_key: str = Field(description="The HMAC key, base64url; shown only in this response")
    organization: str
    label: str | None


@router.post("/acme/eab-keys", status_code=201, response_model=EABKeyCreated,
             responses=WRITE_PROBLEMS)
def create_eab_key(body: EABKeyCreate, principal: CurrentPrincipal, api: Services,
                   key: IdempotencyKey = None) -> Response:
    """Make an External Account Binding key: the ACME account created with it belongs to the
    principal's organization and may order names in its operational domains."""
    authorize(principal, Action.REGISTER)

    def create() -> EABKeyCreated:
        made = api.acme_keys.create(principal.organization, principal.actor, body.label)
        return EABKeyCreated(key_id=made.key_id, hmac_key=made.hmac_key,
                             organization=made.organization, label=made.label)

    return run_idempotent(api, principal, key, request_hash("create_eab_key", body), 201, create)
