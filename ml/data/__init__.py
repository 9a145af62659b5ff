"""Feature data: the features-directory layout, import, the synthetic generator, validation,
encoding and loading.

- :mod:`ml.data.layout`: the one owner of the features directory (file names, paths,
  ``schema.json``, who wrote a directory and whether a tool may replace it).
- :mod:`ml.data.staging`: atomic publication of a features directory.
- :mod:`ml.data.generate`: synthetic CTR data in named worlds with a known ground truth
  (``generate_features``, ``true_probability``, ``oracle_auc``,
  ``ensure_default_features``).
- :mod:`ml.data.importer`: ``ctr-pipeline data import`` (CSV/TSV, Criteo, libSVM/libFM,
  parquet; random or time split; streamed and atomic).
- :mod:`ml.data.schema`: column-type rules.
- :mod:`ml.data.validate`: ``validate_features``; :mod:`ml.data.lineage`: ``fingerprint``.
- :mod:`ml.data.preprocessing`, :mod:`ml.data.loading`: encoding and reading for training;
  :mod:`ml.data.columns` (per-column fitted state), :mod:`ml.data.hashing` (hashed ids).
- :mod:`ml.data.cli`: ``ctr-pipeline data
  import|generate|worlds|validate``.
"""
