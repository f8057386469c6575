"""The one exception type for expected failures that users see."""


class ApplicationError(Exception):
    """An expected, user-facing failure: bad input, a refused action, a missing artifact.

    ``message`` is shown to the user as it is; ``field`` names the input it concerns (if
    any); ``extra`` carries structured detail (e.g. a per-row import report).
    """

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}

    def as_dict(self) -> dict:
        payload: dict = {"message": self.message}
        if self.field:
            payload["field"] = self.field
        if self.extra:
            payload["extra"] = self.extra
        return payload
