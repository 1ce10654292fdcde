"""The query side: retrieval, generation, the REST service and the CLI."""
