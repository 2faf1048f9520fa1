"""What every recipe section shares: unknown keys are errors, cross-field checks name a field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FieldError(ValueError):
    """A cross-field check that failed; ``field`` is appended to the error's dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Section(BaseModel):
    """Base for every recipe section: unknown keys are errors, assignment is checked."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
