"""Errors a model package's ``code/inference.py`` may raise, and how the server answers them.

The training stage's ``inference.py`` imports these (``from mlops.serving.errors import
InvalidInput``) when it runs inside this server; it may equally raise any ``ValueError``.

=================================  ======  =====================================================
raised by ``input_fn``/handlers      HTTP    body ``{"error": code, "message": ...}``
=================================  ======  =====================================================
``InvalidInput(field, message)``     400     ``ValidationError``; message starts with the field name
any other ``ValueError``             400     ``ValidationError``; the exception's message
``UnsupportedContentType(ct)``       415     ``UnsupportedMediaType`` (also any exception class
                                             named ``UnsupportedContentType``/``UnsupportedFormatError``)
``UnsupportedAccept(accept)``        406     ``NotAcceptable``
anything else                        500     ``ModelError`` (runtime path: 424, like SageMaker)
=================================  ======  =====================================================

The server itself answers 413 above ``serving.max_payload_bytes`` (6 MiB, SageMaker's limit).
"""

from __future__ import annotations


class InvalidInput(ValueError):
    """The request body is malformed; ``field`` names the offending field (or row/column)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnsupportedContentType(ValueError):
    """``input_fn`` cannot parse this Content-Type (answered with 415)."""

    def __init__(self, content_type: str, supported: tuple[str, ...] = ("application/json", "text/csv")) -> None:
        super().__init__(f"content type {content_type!r} is not supported; send one of {', '.join(supported)}")
        self.content_type = content_type


class UnsupportedAccept(ValueError):
    """``output_fn`` cannot produce this Accept type (answered with 406)."""

    def __init__(self, accept: str, supported: tuple[str, ...] = ("application/json", "text/csv")) -> None:
        super().__init__(f"accept type {accept!r} is not supported; ask for one of {', '.join(supported)}")
        self.accept = accept


class ModelPackageError(RuntimeError):
    """A model package cannot be loaded (missing ``code/inference.py``, missing handler, bad archive)."""


class DeploymentError(RuntimeError):
    """An endpoint create/update failed; for an update, the old variants still serve."""


UNSUPPORTED_MEDIA_NAMES = ("UnsupportedContentType", "UnsupportedFormatError", "UnsupportedMediaType")


def status_for(exc: BaseException) -> tuple[int, str]:
    """HTTP status and error code for an exception raised by a model handler."""
    # By name too: a package's inference.py may define its own class so it runs on a stock container.
    if isinstance(exc, UnsupportedContentType) or type(exc).__name__ in UNSUPPORTED_MEDIA_NAMES:
        return 415, "UnsupportedMediaType"
    if isinstance(exc, UnsupportedAccept):
        return 406, "NotAcceptable"
    if isinstance(exc, (ValueError, UnicodeDecodeError)):
        return 400, "ValidationError"
    return 500, "ModelError"
