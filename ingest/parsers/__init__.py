"""One parser per format. Each turns bytes into a flat list of :class:`~ingest.blocks.Block`."""
