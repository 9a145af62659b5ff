"""The project's own Airflow around ``ml``: ``make run``, ``make airflow`` and their helpers.

Run the entry points as modules from the checkout (the Makefile does)::

    python -m scripts.run_pipeline [--set KEY=VALUE ...]     # make run
    python -m scripts.airflow_services up|down|status         # make airflow
    python scripts/airflow_env.py --shell                     # export lines for a shell

and import everything else as ``scripts.<module>``:

- ``airflow_env``: where this project's Airflow lives (``AIRFLOW_HOME``, DAGs folder,
  ``PYTHONPATH``), seeding the default config into a new base directory, migrating the
  metadata database when needed.
- ``airflow_cli``: several ``airflow`` CLI commands in one interpreter (Airflow's start-up
  is paid once, interpreter teardown is not).
- ``run_pipeline`` (``make run``) and ``run_report`` (its closing summary).
- ``airflow_services`` (``make airflow``: command line) over ``services_stack``
  (``AirflowServices``: start, watch, restart, stop), ``services_config`` (profiles in
  ``deploy/``), ``services_processes`` (owning and stopping process trees),
  ``services_supervisor`` (restarts with backoff), ``services_auth`` (users, passwords,
  API tokens) and ``services_db`` (PostgreSQL databases); each service runs through
  ``airflow_launch`` (``airflow`` with its log server bound to ``CTR_LOG_SERVER_HOST``).
"""
