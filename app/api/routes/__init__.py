from app.api.routes import collections, documents, health, jobs, metrics, query, web

ROUTERS = [health.router, query.router, collections.router, documents.router, jobs.router, web.router]

__all__ = ["ROUTERS", "metrics"]
