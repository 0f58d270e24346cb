"""`/docs` and `/redoc` work offline: every asset they load comes from the service itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from onbehalf.stack import SERVICES, Stack

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_reference_no_external_host_and_the_assets_are_served(
    own_stack: Stack, page: str
) -> None:
    with httpx.Client(timeout=10.0) as client:
        for name in SERVICES:
            base = own_stack.url(name)
            response = client.get(base + page)
            assert response.status_code == 200, (name, response.text)
            html = response.text
            assert "cdn." not in html and "jsdelivr" not in html and "unpkg" not in html, html
            references = [a or b for a, b in ASSET.findall(html)]
            scripts = [ref for ref in references if ref.endswith(".js")]
            assert scripts, f"{name}{page} loads no script: {html}"
            for reference in references:
                url = urljoin(base + page, reference)
                assert urlsplit(url).netloc == urlsplit(base).netloc, f"{name}: {reference}"
                asset = client.get(url)
                assert asset.status_code == 200, (name, reference, asset.status_code)
                assert asset.content, (name, reference)
            assert "/openapi.json" in references or "/openapi.json" in html
