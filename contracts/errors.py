"""Errors that say whether a retry can help.

Backends translate vendor exceptions into these at their boundary
(``raise PermanentError(...) from e``). Tasks retry only ``TransientError``.
Every error carries a machine-readable ``code`` that ends up on the job and in
HTTP answers, and a human ``message``.
"""

from __future__ import annotations

import re

# An absolute file path, or a run of them: what an error message must not show a client.
_PATH = re.compile(r"(?<![\w:/])(?:/[\w.+@-]+){2,}/?")


def public_message(message: str, limit: int = 300) -> str:
    """``message`` as a client may see it: server paths replaced, length bounded."""
    cleaned = _PATH.sub("<path>", message)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class StageError(Exception):
    """Base of all stage errors."""

    code = "stage_error"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class TransientError(StageError):
    """Something outside the input went wrong (broker blip, OOM, busy GPU): retry may help."""

    code = "transient_error"
    retryable = True


class PermanentError(StageError):
    """The input or the configuration is wrong: retrying the same message cannot help.

    A normal outcome such as "no face in the photo" is a ``PermanentError`` with a
    specific code (``no_face``), shown to the user, not a stack trace.
    """

    code = "permanent_error"


class StageTimeout(StageError):
    """The stage ran past its time limit."""

    code = "stage_timeout"


class ModelMissingError(PermanentError):
    """A model file or folder is missing; the message names the command that prepares it."""

    code = "model_missing"


class UnknownBackendError(PermanentError):
    """Settings name a backend that is not registered."""

    code = "unknown_backend"
