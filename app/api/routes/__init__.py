from app.api.routes import collections, documents, health, metrics, query

ROUTERS = [health.router, query.router, collections.router, documents.router]

__all__ = ["ROUTERS", "metrics"]
