"""The model registry: the facade ``ml.registry.model_registry.ModelRegistry`` (the spec's
import path) over one-job modules; its errors are in :mod:`ml.errors`. See docs/registry.md.
"""

from __future__ import annotations
