"""ml.serving.refs: NAME[/VERSION] references."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import NotFoundError, UserError
from ml.registry.model_registry import ModelRegistry
from ml.serving.refs import resolve_ref, split_ref


def test_split_ref() -> None:
    assert split_ref("ctr_model") == ("ctr_model", "current")
    assert split_ref("ctr_model/v3") == ("ctr_model", "v3")
    assert split_ref("ctr_model", default="") == ("ctr_model", "")
    for bad in ("", "/v3", "ctr_model/", "a/b/c"):
        with pytest.raises(UserError, match="is not NAME or NAME/VERSION"):
            split_ref(bad)


def test_resolve_ref(registry_dir: Path) -> None:
    registry = ModelRegistry(registry_dir)
    assert resolve_ref(registry, "ctr_model") == ("ctr_model", "production", "v1")
    assert resolve_ref(registry, "ctr_model/latest") == ("ctr_model", "staging", "v3")
    assert resolve_ref(registry, "ctr_model/v1") == ("ctr_model", "production", "v1")
    assert resolve_ref(registry, "ctr_model/v2") == ("ctr_model", "staging", "v2")
    with pytest.raises(NotFoundError, match="v9 not found"):
        resolve_ref(registry, "ctr_model/v9")
