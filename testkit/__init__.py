"""Support code shared by the tests and the benchmarks (never imported by ``ml/``).

- :mod:`testkit.airflow`: a small training config for tiny data and a local stand-in for
  Slack's webhook endpoint.
- :mod:`testkit.registry`: fake training runs, the registry consistency check and the
  kill-at-a-random-point trials.
- :mod:`testkit.services`: real Airflow deployments started with ``make airflow``'s own
  command line on temp dirs and free ports, and a REST client; :mod:`testkit.worker_crash`:
  SIGKILL the Celery worker during ``train_model`` and time the healing.

Importable from the checkout root (``python -m pytest`` and ``python -m benchmarks`` put
it on ``sys.path``).
"""
