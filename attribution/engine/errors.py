"""Expected failures of the attribution engine, with messages a user can act on.

The engine raises `EngineError` for bad inputs (a checkpoint that does not match its config,
a query longer than the model's maximum, silent or NaN audio, an empty training set, a Fisher
artifact from another checkpoint). Programmer errors stay plain assertions. The Django layer
translates `EngineError` into its own `ApplicationError`; `field` names the input at fault.
"""

from __future__ import annotations


class EngineError(Exception):
    """A bad input to the attribution engine; `str(err)` is a complete, readable sentence."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class ArtifactNotComputedError(EngineError):
    """A per-checkpoint artifact (Fisher, theta0 losses) does not exist for the engine
    configuration asked for, and the caller did not allow computing it."""
