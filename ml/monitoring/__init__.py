"""Watching the data a model sees: training-data profiles and drift (PSI) against them."""

#: A field whose PSI exceeds this is drifted (0.25: the usual "significant shift").
DEFAULT_MAX_PSI = 0.25
#: What a drifted field does to a pipeline run.
DRIFT_ACTIONS = ("warn", "fail")
