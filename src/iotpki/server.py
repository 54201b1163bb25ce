"""The plain-HTTP listener of `iotpki serve` (DESIGN.md §4): OCSP, CRLs, CA certificates, CMP
and SCEP, with the node's background workers. The application is built by the composition root
(`app.http_app`) from the settings `iotpki serve` handed to this worker process."""

from __future__ import annotations

from starlette.applications import Starlette

from iotpki.app import build_pki, http_app
from iotpki.settings import worker_settings

FACTORY = "iotpki.server:app_from_environment"


def app_from_environment() -> Starlette:
    """The uvicorn factory (`iotpki serve`): the handed-over settings (`worker_settings`)."""
    # `iotpki serve` migrated the schema before starting the workers.
    return http_app(build_pki(worker_settings(), migrate=False, group_commit=True))
