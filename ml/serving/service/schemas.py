"""The JSON bodies of the scoring service's routes (pydantic models, in the OpenAPI)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
Click = StrictBool | Annotated[int, Field(ge=0, le=1, strict=True)]


class PredictRequest(BaseModel):
    """Raw feature rows (null numerics score with the train mean, unseen categories as OOV)."""

    rows: list[dict[str, str | int | float | None]] = Field(min_length=1)
    key: str | int | None = Field(
        None, description="A/B key (default: the first row's key field, e.g. user_id)"
    )


class PredictResponse(BaseModel):
    request_id: str
    model: str
    version: str
    variant: str
    probabilities: list[float]


class Feedback(BaseModel):
    """The outcome of a scored row: ``clicked`` for row ``row`` (or a list from row 0)."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(pattern=_ID_PATTERN)
    clicked: Click | Annotated[list[Click], Field(min_length=1)] = Field(
        description="true/false or 1/0, or a list: one per row from ``row``"
    )
    row: int = Field(0, ge=0, le=1_000_000, strict=True)
