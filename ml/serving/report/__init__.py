"""The A/B report over the scoring service's logs (``ctr-pipeline serve report``).

:mod:`~ml.serving.report.ab` joins predictions with feedback and gives the verdict;
:mod:`~ml.serving.report.stats` holds the intervals and tests it uses.
"""
