"""Dependencies injected into routes: the services, and the caller's key with its scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app.api.auth import OPEN, Principal, bearer
from app.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


def require_api_key(request: Request) -> Principal:
    """With keys configured, each request must carry one (Authorization: Bearer KEY or X-API-Key)."""
    keys = request.app.state.keys
    if not keys.enabled:
        return OPEN
    key = bearer(request.headers)
    principal = keys.authenticate(key) if key else None
    if principal is None:
        raise HTTPException(401, "missing or invalid API key (Authorization: Bearer KEY or X-API-Key)",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


def allow(principal: Principal, action: str, collection: str) -> None:
    if not principal.can(action, collection):
        raise HTTPException(403, f"this key ({principal.name}) may not {action} collection {collection!r}")


ServicesDep = Annotated[Services, Depends(get_services)]
PrincipalDep = Annotated[Principal, Depends(require_api_key)]
