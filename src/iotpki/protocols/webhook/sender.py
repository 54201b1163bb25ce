"""POSTs a signed webhook body (docs/webhooks.md) with the standard library's HTTP client.

Redirects are not followed: a subscription names the URL that receives the events, and a
redirect could carry a signed payload somewhere the subscriber did not name.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from iotpki.core.integration.webhook_service import WebhookSendError


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HTTPWebhookSender:
    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirect())

    def send(self, url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> int:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with self._opener.open(request, timeout=timeout) as response:
                response.read(65536)  # drain a little, so the connection closes cleanly
                return int(response.status)
        except urllib.error.HTTPError as exc:  # an answer, with an error status
            exc.close()
            return int(exc.code)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise WebhookSendError(f"no answer from {url}: {exc}") from exc
