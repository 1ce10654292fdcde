"""Dependencies injected into routes."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


def require_api_key(request: Request) -> None:
    """With ``MMRAG_API_KEYS`` set (sha256 hex digests), each request must carry a matching key."""
    services: Services = request.app.state.services
    digests = [d.strip().lower() for d in services.settings.api_keys.split(",") if d.strip()]
    if not digests:
        return
    auth = request.headers.get("authorization", "")
    key = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    given = hashlib.sha256(key.encode()).hexdigest()
    # compare against every digest, in constant time, so timing says nothing about which part matched
    ok = False
    for digest in digests:
        ok |= hmac.compare_digest(given, digest)
    if not key or not ok:
        raise HTTPException(401, "missing or invalid API key (Authorization: Bearer KEY or X-API-Key)")


ServicesDep = Annotated[Services, Depends(get_services)]
Auth = Depends(require_api_key)
