"""Model cards, side-by-side comparison and run tracking (see docs/models-ui.md).

- :mod:`.predictions`: the test split's labels and scores that ``evaluate`` saves in the
  run directory (and how to rebuild them from the run's recorded features).
- :mod:`.plots`: the card's PNG plots (matplotlib, Agg, no display).
- :mod:`.content` / :mod:`.render`: what a card says (limitations included), as Markdown
  and as one self-contained HTML file.
- :mod:`.build`: a card for a run being registered, or for an older version (cached
  outside the immutable version).
- :mod:`.compare` / :mod:`.runs`: versions and training runs side by side, with a
  bootstrap interval of the AUC difference and a paired interval of the log loss
  difference; :mod:`.compare_cache` keeps comparisons of versions on disk.
- :mod:`.promotion`: the check before a promotion (worse than production? other data?).
- :mod:`.catalog` / :mod:`.webapp`: the Models page the Airflow plugin mounts.
- :mod:`.cli`: ``registry card``, ``registry compare`` and ``runs list|show|compare``.
"""
