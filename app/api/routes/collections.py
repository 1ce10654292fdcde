from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.api.deps import PrincipalDep, ServicesDep, allow
from app.api.routes.documents import CollectionName, public

router = APIRouter(tags=["collections"])


@router.get("/collections")
def list_collections(services: ServicesDep, principal: PrincipalDep) -> list[dict]:
    """The collections this key may read or write."""
    return [c.to_dict() for c in services.store.collections() if principal.sees(c.name)]


@router.get("/collections/{name}/documents")
def list_documents(name: CollectionName, services: ServicesDep, principal: PrincipalDep) -> dict:
    allow(principal, "read", name)
    cid = services.store.collection_id(name)
    if cid is None:
        raise HTTPException(404, f"no collection named {name!r}")
    return {"collection": name, "documents": [public(d) for d in services.store.documents(cid)]}


@router.delete("/collections/{name}", status_code=204)
def delete_collection(name: CollectionName, services: ServicesDep, principal: PrincipalDep) -> None:
    allow(principal, "manage", name)
    cid = services.store.collection_id(name)
    if cid is None:
        raise HTTPException(404, f"no collection named {name!r}")
    with services.store.writer(wait_s=15):  # a running job holds it: WriterBusy (503, Retry-After), not a hung request
        services.store.delete_collection(cid)
