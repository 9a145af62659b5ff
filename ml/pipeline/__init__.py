"""The pipeline's steps without Airflow: what the DAG and ``ctr-pipeline run`` both call."""
