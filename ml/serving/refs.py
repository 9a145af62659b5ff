"""``NAME[/VERSION]`` references to registered models, as the CLI takes them.

- ``ctr_model`` or ``ctr_model/current``: production's current version;
- ``ctr_model/latest``: the highest staging version;
- ``ctr_model/v3``: v3's production copy when it was promoted, else staging v3.
"""

from __future__ import annotations

from typing import Any

from ml.errors import UserError
from ml.registry.layout import PRODUCTION, STAGING


def split_ref(text: str, default: str = "current") -> tuple[str, str]:
    """``"name/ref"`` → ``(name, ref)``; a bare name gets ``default``."""
    name, sep, ref = text.partition("/")
    if not name or (sep and not ref) or "/" in ref:
        raise UserError(f"model reference {text!r} is not NAME or NAME/VERSION (e.g. ctr_model/v3)")
    return name, ref or default


def resolve_ref(registry: Any, text: str, default: str = "current") -> tuple[str, str, str]:
    """``(name, stage, version)`` of a reference (see the module doc).

    Raises:
        UserError: malformed, or no such model / version (the registry's NotFoundError).
    """
    from ml.errors import NotFoundError

    name, ref = split_ref(text, default)
    if ref in ("current", "latest"):
        stage, version = registry.resolve(name, ref)
        return name, str(stage), str(version)
    try:
        registry.path_of(name, ref, PRODUCTION)
        return name, PRODUCTION, ref
    except NotFoundError:
        stage, version = registry.resolve(name, ref, STAGING)
        return name, str(stage), str(version)
