"""Feature data: the synthetic generator, the on-disk schema, validation, encoding, loading.

- :mod:`ml.data.generate`: synthetic CTR data with a known ground truth
  (``generate_features``, ``true_probability``, ``oracle_auc``).
- :mod:`ml.data.schema`: the features directory layout and column-type rules.
- :mod:`ml.data.validate`: ``validate_features`` and ``fingerprint``.
- :mod:`ml.data.preprocessing`, :mod:`ml.data.loading`: encoding and reading for training.
- :mod:`ml.data.cli`: ``ctr-pipeline data generate|validate``.
"""
