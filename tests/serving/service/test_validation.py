"""ml.serving.service.validation: /predict bodies into DataFrames, or 422s naming the field."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ml.config import FeatureSpec
from ml.errors import RequestValidationError
from ml.serving.service.validation import parse_predict

SPEC = FeatureSpec(categorical=("user_id", "device_type"), numeric=("item_price",))
ROW = {"user_id": 7, "device_type": "mobile", "item_price": 12.5}


def _parse(body: Any, max_batch: int = 4) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_predict(raw, SPEC, max_batch=max_batch, key_field="user_id")


def test_parse_predict_builds_the_columns_and_takes_the_key_from_the_first_row() -> None:
    parsed = _parse({"rows": [ROW, {**ROW, "user_id": None, "item_price": None, "x": [1]}]})
    frame = parsed.frame
    assert list(frame.columns) == ["user_id", "device_type", "item_price"]
    assert frame["user_id"].tolist() == [7, None]
    assert np.isnan(frame["item_price"][1]) and frame["item_price"][0] == 12.5
    assert parsed.key == "7"
    assert _parse({"rows": [ROW], "key": "u-1"}).key == "u-1"
    assert _parse({"rows": [{**ROW, "user_id": None}]}).key is None


BAD_BODIES = [
    (b"{not json", [], "not valid JSON"),
    (b"", [], "not valid JSON"),
    ([ROW], [], "must be an object"),
    ({"rowz": [ROW]}, ["rowz"], "unknown field 'rowz'"),
    ({}, ["rows"], "field 'rows' is required"),
    ({"rows": {"a": 1}}, ["rows"], "must be a list of row objects"),
    ({"rows": []}, ["rows"], "'rows' is empty"),
    ({"rows": [ROW] * 5}, ["rows"], "holds 5 rows; the batch limit is 4"),
    ({"rows": [ROW, 3]}, ["rows", 1], "row 1 must be an object"),
    ({"rows": [ROW, {"user_id": 1, "device_type": "x"}]}, ["rows", 1, "item_price"], "lacks"),
    ({"rows": [{**ROW, "item_price": "12.5"}]}, ["rows", 0, "item_price"], "must be a number"),
    ({"rows": [{**ROW, "item_price": True}]}, ["rows", 0, "item_price"], "got a boolean"),
    ({"rows": [{**ROW, "device_type": [1]}]}, ["rows", 0, "device_type"], "got a list"),
    ({"rows": [{**ROW, "device_type": 1.5}]}, ["rows", 0, "device_type"], "non-integer"),
    ({"rows": [{**ROW, "device_type": {"a": 1}}]}, ["rows", 0, "device_type"], "an object"),
    ({"rows": [{**ROW, "user_id": 2**70}]}, ["rows", 0, "user_id"], "64-bit integer range"),
    ({"rows": [ROW], "key": [1]}, ["key"], "'key' must be a string or an integer"),
]


@pytest.mark.parametrize(("body", "loc", "message"), BAD_BODIES, ids=lambda x: str(x)[:30])
def test_parse_predict_rejects_bad_bodies_naming_the_problem(
    body: Any, loc: list[Any], message: str
) -> None:
    with pytest.raises(RequestValidationError, match=message) as info:
        _parse(body)
    first = info.value.errors[0]
    assert first["loc"] == ["body", *loc]
    assert message in first["msg"] and first["type"]


def test_parse_predict_reports_every_bad_cell_up_to_the_limit() -> None:
    rows = [{**ROW, "item_price": "x"} for _ in range(30)]
    with pytest.raises(RequestValidationError) as info:
        _parse({"rows": rows}, max_batch=100)
    assert len(info.value.errors) == 20
    assert [e["loc"][2] for e in info.value.errors[:3]] == [0, 1, 2]
