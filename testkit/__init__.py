"""Support code shared by the tests and the benchmarks (never imported by ``ml/``).

- :mod:`testkit.airflow`: a small training config for tiny data and a local stand-in for
  Slack's webhook endpoint.
- :mod:`testkit.registry`: fake training runs, the registry consistency check and the
  kill-at-a-random-point trials.

Importable from the checkout root (``python -m pytest`` and ``python -m benchmarks`` put
it on ``sys.path``).
"""
