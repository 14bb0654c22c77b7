"""Base model and the one place that turns a pydantic ValidationError into a RequestValidationError."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from fmops.errors import RequestValidationError

M = TypeVar("M", bound=BaseModel)


class FmopsModel(BaseModel):
    """Lenient on input (unknown keys ignored), as step inputs carry the whole workflow state."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class StrictModel(BaseModel):
    """Unknown keys are an error (requests written by people: a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('split', 'ratios', 0)`` -> ``split.ratios[0]``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def describe(exc: ValidationError, what: str) -> tuple[str, str | None]:
    """A readable one-line message for the first error of ``exc`` and the field it names."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = field_path(tuple(first["loc"])) or None
    kind = first["type"]
    if kind == "missing":
        reason = "is required"
    elif kind == "extra_forbidden":
        reason = "is not a known field"
    else:
        reason = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    where = f"field '{field}': " if field else ""
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return f"{what}: {where}{reason}{more}", field


def parse(model: type[M], data: Any, what: str | None = None) -> M:
    """Validate ``data`` into ``model``.

    Raises:
        RequestValidationError: naming the first invalid field.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message, field = describe(exc, what or model.__name__)
        raise RequestValidationError(message, field=field) from exc
