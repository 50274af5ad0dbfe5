"""``GET /``: a page to try the served model in a browser.

One self-contained HTML file (``static/index.html``: no CDN, no build step, works offline):
drop, paste or choose images, type labels (``POST /classify``) or a query
(``POST /rank``: the images ranked, cosine and probability each), see the scores as bars, the latency and the
model's metadata (``GET /v2``, ``GET /v2/models/{name}``); with several models served, a
selector picks the one every call names (the first by default). It calls the same public routes
as any client, with the API key typed into it (kept in the page only, never stored).

The page itself holds no data and is served without the key, so a person can open it and
type the key; every call it makes needs the key like any other. Its inline script is
allowed by its hash in a strict Content-Security-Policy (nothing else runs, nothing loads
from elsewhere).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI, Response

#: The page's path; the API-key guard leaves exactly this path open.
PAGE_PATH = "/"


def page_html() -> bytes:
    """The page's bytes."""
    return files("mmship.serving").joinpath("static", "index.html").read_bytes()


def content_security_policy(html: bytes) -> str:
    """A policy allowing exactly the page's inline script and style, images from data and
    blob URLs, and calls to this server."""
    scripts = re.findall(rb"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts)
    return (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``GET /``."""
    html = page_html()
    headers = {
        "content-security-policy": content_security_policy(html), "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer", "cache-control": "no-cache",
    }

    @app.get(PAGE_PATH, include_in_schema=False)
    async def page() -> Response:
        return Response(html, media_type="text/html; charset=utf-8", headers=headers)
