"""ml.tuning.study: names derived from config and data, resume, fresh studies, counts."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ml.config import Config
from ml.errors import TuningError
from ml.tuning import study as st
from ml.tuning.storage import StorageSpec

JOURNAL = StorageSpec()


def test_name_ignores_the_tuning_section_but_not_config_data_or_metric(cfg: Config) -> None:
    name = st.base_name(cfg, "d" * 64)
    assert name.startswith("ctr_model-val_auc-") and len(name.rsplit("-", 1)[1]) == 12
    assert st.base_name(cfg.replace(tuning={"trials": 99, "space": {}}), "d" * 64) == name
    assert st.base_name(cfg.replace(training={"epochs": 3}), "d" * 64) != name
    assert st.base_name(cfg, "e" * 64) != name
    assert st.base_name(cfg.replace(tuning={"metric": "val_logloss"}), "d" * 64) != name


def test_prepare_creates_the_study_with_the_configs_values_as_trial_0(cfg: Config) -> None:
    ref, notes = st.prepare(cfg, cfg.data.features_dir)
    assert notes == [
        "tuning.space key model.cross_layers does not apply to model deepfm: those trials "
        "do not sample it",
        # The small config's learning rate (0.01) lies below the space's range: trial 0
        # still trains with it; the sampler sees that trial without the parameter.
        "trial 0 trains the config's own training.learning_rate=0.01 (space [0.02, 0.05] "
        "log), outside the search space",
    ]
    study = st.load(ref, cfg)
    (trial0,) = study.get_trials()
    assert trial0.state == TrialState.WAITING
    assert trial0.user_attrs[st.DEFAULTS_ATTR] is True
    assert trial0.system_attrs["fixed_params"] == {
        "model.name": "dcnv2",
        "model.cross_layers": 1,
        "model.dropout": 0.0,
    }
    assert study.user_attrs["config_digest"] == cfg.digest()
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE


def test_prepare_again_resumes_the_same_study_and_new_starts_a_fresh_one(cfg: Config) -> None:
    ref, _ = st.prepare(cfg, cfg.data.features_dir)
    again, _ = st.prepare(cfg.replace(tuning={"trials": 10}), cfg.data.features_dir)
    assert again == ref
    assert len(st.load(ref, cfg).get_trials()) == 1  # trial 0 queued once
    fresh, _ = st.prepare(cfg, cfg.data.features_dir, new=True)
    assert fresh.name == f"{ref.name}-2"
    third, _ = st.prepare(cfg, cfg.data.features_dir, new=True)
    assert third.name == f"{ref.name}-3"
    # Without --new-study the newest one is resumed.
    assert st.prepare(cfg, cfg.data.features_dir)[0].name == f"{ref.name}-3"


def test_prepare_without_a_space_is_an_error(cfg: Config) -> None:
    with pytest.raises(TuningError, match=r"the config has no tuning\.space"):
        st.prepare(cfg.replace(tuning={"space": {}}), cfg.data.features_dir)


def test_load_of_a_missing_study_says_how_to_create_it(cfg: Config) -> None:
    with pytest.raises(TuningError, match=r"no study nope .*create it first"):
        st.load(st.StudyRef("nope", JOURNAL), cfg)


def test_counts_and_first_error(home: Path, cfg: Config) -> None:
    ref = st.StudyRef("counted", JOURNAL)
    study = optuna.create_study(study_name=ref.name, storage=JOURNAL.open(ref.name))
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL):
        trial = study.ask()
        if state == TrialState.FAIL and not study.get_trials(states=(TrialState.FAIL,)):
            trial.set_user_attr(st.ERROR_ATTR, "TrainingError: the training loss is nan")
        study.tell(trial, 0.5 if state == TrialState.COMPLETE else None, state=state)
    study.ask()
    c = st.counts(study)
    assert (c.complete, c.pruned, c.failed, c.errors, c.running) == (1, 1, 2, 1, 1)
    assert c.finished == 2
    assert st.first_error(study) == "trial 2: TrainingError: the training loss is nan"
    assert st.best_trial(study) is not None and st.best_trial(study).number == 0  # type: ignore[union-attr]
