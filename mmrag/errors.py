"""Errors a user can act on."""


class MmragError(Exception):
    """Base class."""


class DocumentError(MmragError):
    """A document could not be ingested; the message says why. Other documents are unaffected."""


class UnsupportedFormat(DocumentError):
    pass


class EncryptedDocument(DocumentError):
    pass


class LimitExceeded(DocumentError):
    pass


class CorruptDocument(DocumentError):
    pass


class ModelMismatch(MmragError):
    """A collection's vectors came from other embedding models than the ones configured now."""
