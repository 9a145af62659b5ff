"""ml.serving.service.schemas: what /predict and /feedback bodies may hold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ml.serving.service.schemas import Feedback, PredictRequest


def test_feedback_accepts_bools_ints_and_lists() -> None:
    assert Feedback(request_id="abc-1", clicked=True).clicked is True
    assert Feedback(request_id="abc-1", clicked=[0, 1], row=0).clicked == [0, 1]


@pytest.mark.parametrize(
    "body",
    [
        {"request_id": "a b", "clicked": True},  # outside the id pattern
        {"request_id": "x", "clicked": 2},  # not a click
        {"request_id": "x", "clicked": "yes"},  # strings are not clicks
        {"request_id": "x", "clicked": True, "row": -1},
        {"request_id": "x", "clicked": True, "extra": 1},  # unknown field
        {"request_id": "x", "clicked": []},  # no outcome
    ],
)
def test_feedback_refuses_bad_bodies(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Feedback(**body)  # type: ignore[arg-type]


def test_predict_request_needs_at_least_one_row() -> None:
    with pytest.raises(ValidationError, match="rows"):
        PredictRequest(rows=[])
    assert PredictRequest(rows=[{"user_id": 1}], key="u1").key == "u1"
