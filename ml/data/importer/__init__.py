"""``ctr-pipeline data import``: bring your own click logs into the features layout.

Reads CSV/TSV (with or without a header; Criteo's layout with ``--format criteo``),
libSVM/libFM/libFFM text and parquet; splits one source by ratio (random, seeded) or by a
time column, or takes train/val/test files as they are; streams in bounded memory and
publishes ``{train,val,test}/data.parquet`` plus a ``schema.json`` naming the sources,
atomically. A malformed line is a :class:`~ml.errors.DataImportError` naming the file,
the line and the field, and leaves nothing behind.

- :mod:`~ml.data.importer.options`: the options and format detection;
- :mod:`~ml.data.importer.sources`, :mod:`~ml.data.importer.csv_source`,
  :mod:`~ml.data.importer.libsvm_source`: the readers;
- :mod:`~ml.data.importer.plan`: column roles and stored types;
- :mod:`~ml.data.importer.splitting`: random and time splits;
- :mod:`~ml.data.importer.core`: :func:`import_features`;
- :mod:`~ml.data.importer.config_out`: the ``features:`` block and ``--write-config``.
"""

from __future__ import annotations
