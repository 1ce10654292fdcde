from app.api.routes import collections, documents, health, jobs, metrics, query

ROUTERS = [health.router, query.router, collections.router, documents.router, jobs.router]

__all__ = ["ROUTERS", "metrics"]
