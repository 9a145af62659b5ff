"""CTR training pipeline: data, training, evaluation, registry and serving (no Airflow here)."""

__version__ = "0.1.0"
