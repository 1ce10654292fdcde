from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app.api.deps import Auth, ServicesDep

router = APIRouter(tags=["collections"], dependencies=[Auth])


@router.get("/collections")
def list_collections(services: ServicesDep) -> list[dict]:
    return services.store.docs.collections()


@router.get("/collections/{name}/documents")
def list_documents(name: str, services: ServicesDep) -> dict:
    cid = services.store.docs.collection_id(name)
    if cid is None:
        raise HTTPException(404, f"no collection named {name!r}")
    return {"collection": name, "documents": services.store.docs.documents(cid)}


@router.delete("/collections/{name}", status_code=204)
def delete_collection(name: str, services: ServicesDep) -> None:
    cid = services.store.docs.collection_id(name)
    if cid is None:
        raise HTTPException(404, f"no collection named {name!r}")
    services.store.delete_collection(cid)
