"""The file-system model registry (``ModelRegistry``) and its errors; see docs/registry.md."""

from __future__ import annotations

from ml.registry.errors import RegistryError
from ml.registry.model_registry import ModelRegistry, RegisteredVersion

__all__ = ["ModelRegistry", "RegisteredVersion", "RegistryError"]
