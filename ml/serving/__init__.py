"""Scoring: a trained or registered model applied to raw feature rows.

Three parts, each usable without the others:

- the library: :mod:`~ml.serving.predictor` (``Predictor``: a checkpoint applied to a
  DataFrame), :mod:`~ml.serving.batch` (files in, probabilities out, bounded memory),
  :mod:`~ml.serving.refs` (``NAME[/VERSION]`` references to registered models);
- :mod:`ml.serving.service`: the HTTP scoring service (FastAPI: app, routes,
  dependencies, the hot reload of ``current``, A/B routing, the outcome logs);
- :mod:`ml.serving.report`: the offline A/B report over the service's logs.

:mod:`~ml.serving.cli` holds ``ctr-pipeline serve``, ``serve report`` and ``predict``.
"""
