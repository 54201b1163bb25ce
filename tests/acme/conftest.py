"""ACME in process: the ACME routes over Starlette's TestClient (an httpx client on the ASGI
app, no socket), on the story's demo PKI shared by the module; http-01 is validated against
a real HTTP responder on a loopback port (`Responder`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import pytest
from starlette.applications import Starlette

from iotpki.app import PKI, acme_server
from iotpki.core.audit.log import AuditRecord
from iotpki.protocols.acme.routes import routes
from iotpki.protocols.acme.validation import ValidationSettings
from iotpki.wire.acme.jws import PrivateKey
from iotpki.wire.keys import generate_private_key
from tests.acme.client import ACMEClient, Responder
from tests.conftest import last_audit_seq, shared_demo_pki

BASE = "https://acme.test"


class InProcess:
    """A synchronous httpx face on an ASGI app (httpx's ASGITransport is async only)."""

    def __init__(self, app: Starlette, base_url: str) -> None:
        self._portal_context = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_context.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_context.__exit__(None, None, None)


@dataclass
class ACMEWorld:
    pki: PKI
    http: InProcess
    responder: Responder

    def client(self, label: str = "", key_type: str = "ec-p256",
               key: PrivateKey | None = None) -> ACMEClient:
        path = f"/acme/{label}/directory" if label else "/acme/directory"
        return ACMEClient(self.http, BASE + path, key or generate_private_key(key_type))

    def account(self, label: str = "", key_type: str = "ec-p256",
                organization: str | None = None) -> ACMEClient:
        client = self.client(label, key_type)
        eab = None
        if organization is not None:
            made = self.pki.acme_keys.create(organization, "test")
            eab = (made.key_id, _b64(made.hmac_key))
        assert client.new_account(eab).status_code == 201
        return client

    def audit_since(self, seq: int, action: str) -> list[AuditRecord]:
        return [e.record for e in self.pki.audit.entries(after=seq, limit=None)
                if e.record.action == action]

    def audit_head(self) -> int:
        return last_audit_seq(self.pki)

    def answer_http01(self, client: ACMEClient, order: dict[str, Any]) -> None:
        for challenge in client.challenge(order, "http-01"):
            self.responder.answers[challenge["token"]] = \
                client.key_authorization(challenge["token"]).encode()
            answer = client.post(challenge["url"], {})
            assert answer.status_code == 200, answer.text


def _b64(text: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def acme(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         module_database_url: str | None) -> Iterator[ACMEWorld]:
    directory: Path = tmp_path_factory.mktemp("acme")
    responder = Responder()
    with shared_demo_pki(request, directory, module_database_url, "http://pki.test:8080") as pki:
        server = acme_server(pki, ValidationSettings(http_port=responder.port,
                                                     connect_address="127.0.0.1", timeout=5))
        app = Starlette(routes=routes(server))
        http = InProcess(app, BASE)
        try:
            yield ACMEWorld(pki, http, responder)
        finally:
            http.close()
    responder.close()
