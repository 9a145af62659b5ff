"""Errors of the model-card area (under :class:`ml.errors.UserError`)."""

from __future__ import annotations

from ml.errors import UserError


class CardError(UserError):
    """A card, a comparison or a run cannot be built from what is on disk (says why)."""
