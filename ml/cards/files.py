"""The file names of a model card (flat: the registry's manifest takes plain names).

Kept apart from the code that builds cards so that readers (the Models page, the CLI)
import no plotting or scoring code.
"""

from __future__ import annotations

CARD_MD = "model_card.md"
CARD_HTML = "model_card.html"
PLOT_ROC = "plot_roc.png"
PLOT_PR = "plot_pr.png"
PLOT_CALIBRATION = "plot_calibration.png"
PLOT_TRAINING = "plot_training.png"
PLOT_SCORES = "plot_scores.png"
PLOT_FILES = (PLOT_ROC, PLOT_PR, PLOT_CALIBRATION, PLOT_TRAINING, PLOT_SCORES)
#: Every file a card adds to a version (the plots only when they could be drawn).
CARD_FILES = (CARD_MD, CARD_HTML, *PLOT_FILES)
#: Cards of versions registered without one, under the registry root.
CACHE_DIR = ".cards"
