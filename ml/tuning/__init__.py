"""Hyperparameter tuning with Optuna: ``ctr-pipeline tune`` and the DAG's tuning group.

- :mod:`ml.tuning.space`: the config's ``tuning:`` section (metric, trials, search space).
- :mod:`ml.tuning.storage`: where studies live (a journal file, or ``$CTR_TUNING_STORAGE``).
- :mod:`ml.tuning.study`: study names, creating or resuming a study, counting its trials.
- :mod:`ml.tuning.trial`: one trial = one ordinary training run (never scoring test).
- :mod:`ml.tuning.worker`: pull trials until the study holds enough finished ones.
- :mod:`ml.tuning.report`: live lines, the final table, ``tuning.json`` and the plot.
- :mod:`ml.tuning.cli`: the ``tune`` subcommand.

See docs/tuning.md.
"""
