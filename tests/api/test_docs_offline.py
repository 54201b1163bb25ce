"""Issue 22 item 9: /api/v1/docs works offline: the page names no CDN and every asset it
loads is served by the API itself (from the swagger-ui-bundle package)."""

from __future__ import annotations

import re

from tests.api.conftest import APIClient


def test_the_docs_page_loads_its_assets_from_the_api(client: APIClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a.rsplit("/", 1)[-1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        answer = client.get(asset)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 500, asset
    assert "/api/v1/openapi.json" in page.text
