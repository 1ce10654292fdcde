from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request):
    """Models are loaded and the docstore answers. Async, like /healthz: neither waits for a thread
    that ingestion or queries may all be holding."""
    services = request.app.state.services
    try:
        services.store.ping()
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "reason": f"store: {exc}"}, status_code=503)
    if not request.app.state.ready:
        return JSONResponse({"status": "starting", "reason": "loading models"}, status_code=503)
    return {"status": "ready"}
