"""The web page at ``/``: plain HTML, CSS and JavaScript from ``app/web``, served by the API itself
(no separate server, no build step, nothing from a CDN). The page and its assets need no key; every
call the page makes to the API carries the key the user typed."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

WEB = Path(__file__).resolve().parents[2] / "web"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
# the page loads only its own assets; page images come as blob: URLs made from authorised fetches
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                                      "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(WEB / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/static/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return FileResponse(WEB / name, media_type=ASSETS[name], headers=HEADERS)
