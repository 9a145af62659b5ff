"""ml.serving.report.ab (+ outcomes): the A/B report on synthetic logged outcomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.serving.report.ab import ab_report, report_lines, report_markdown
from ml.serving.service.outcomes import FEEDBACK_FILE, PREDICTIONS_FILE, AppendLog, joined_outcomes
from testkit.serving import write_ab_logs as write_logs


def test_report_says_a_better_candidate_is_better(tmp_path: Path) -> None:
    write_logs(tmp_path, n=6000, candidate_noise=0.2)
    report = ab_report(tmp_path)
    assert report["predictions"] == 6000 and report["unmatched_feedback"] == 1
    control, candidate = report["variants"]["control"], report["variants"]["candidate"]
    assert control["rows"] + candidate["rows"] == report["outcomes"] == 5400
    assert candidate["versions"] == ["v2"] and candidate["auc"]["value"] > control["auc"]["value"]
    assert 0.1 < control["ctr"]["value"] < 0.5
    assert control["ctr"]["low"] < control["ctr"]["value"] < control["ctr"]["high"]
    assert report["comparison"]["verdict"] == "better"
    text = "\n".join(report_lines(report))
    assert "verdict: the candidate is BETTER on auc (DeLong (independent samples)" in text
    assert "candidate - control: CTR" in text and "z-test" in text
    md = report_markdown(report)  # the approval's body: a table row per variant
    assert md[0].startswith("| variant | versions | rows | clicks | CTR (95% CI)")
    row = f"| candidate | v2 | {candidate['rows']:,} | {candidate['clicks']:,} |"
    assert md[3].startswith(row) and md[3].endswith(" |") and md[3].count("|") == 9
    assert md[-1].startswith("- verdict: the candidate is **BETTER** on auc")


def test_report_gives_log_loss_per_variant_and_its_verdict(tmp_path: Path) -> None:
    write_logs(tmp_path, n=6000, candidate_noise=0.2)
    report = ab_report(tmp_path, metric="logloss")
    control, candidate = report["variants"]["control"], report["variants"]["candidate"]
    assert candidate["logloss"]["value"] < control["logloss"]["value"]
    assert control["logloss"]["low"] < control["logloss"]["value"] < control["logloss"]["high"]
    assert report["comparison"]["logloss_difference"]["high"] < 0  # candidate - control
    assert report["comparison"]["verdict"] == "better"
    assert report["comparison"]["test"] == "Welch (independent samples)"
    assert "candidate - control: log loss" in "\n".join(report_lines(report))


def test_report_is_undecided_for_equal_models_and_on_ctr(tmp_path: Path) -> None:
    write_logs(tmp_path, n=3000, candidate_noise=1.5, seed=1)
    report = ab_report(tmp_path)
    assert report["comparison"]["verdict"] == "undecided"
    assert "contains 0: collect more outcomes" in "\n".join(report_lines(report))
    ctr = ab_report(tmp_path, metric="ctr")
    assert ctr["comparison"]["test"] == "two-proportion z-test"
    assert ctr["comparison"]["verdict"] == "undecided"  # same users, same click rates


def test_report_compares_the_shadow_model_on_the_same_rows(tmp_path: Path) -> None:
    write_logs(tmp_path, n=2000, candidate_noise=1.5, shadow=True, seed=2)
    report = ab_report(tmp_path)
    shadow = report["shadow"]
    assert shadow["versions"] == ["v3"] and shadow["rows"] == report["outcomes"]
    assert shadow["verdict"] == "better" and shadow["test"] == "paired DeLong (same rows)"
    assert "shadow v3 - served on the same 1,800 rows" in "\n".join(report_lines(report))


def test_report_without_outcomes_is_undecided(tmp_path: Path) -> None:
    report = ab_report(tmp_path)
    assert report["outcomes"] == 0 and report["variants"] == {}
    assert report_lines(report)[-1].startswith("verdict: undecided")
    with pytest.raises(ValueError, match="metric must be one of"):
        ab_report(tmp_path, metric="revenue")


def test_feedback_lists_and_torn_lines(tmp_path: Path) -> None:
    preds, fb = AppendLog(tmp_path / PREDICTIONS_FILE), AppendLog(tmp_path / FEEDBACK_FILE)
    preds.append({"request_id": "a", "variant": "control", "version": "v1", "scores": [0.1, 0.9]})
    fb.append({"request_id": "a", "clicked": [0, 1]})
    fb.append({"request_id": "a", "row": 1, "clicked": 0})  # a later outcome is ignored
    preds.close()
    fb.close()
    with open(tmp_path / FEEDBACK_FILE, "a") as fh:
        fh.write('{"request_id": "a", "row"')  # torn by a crash
    joined = joined_outcomes(tmp_path)
    assert [(o.score, o.clicked) for o in joined.outcomes] == [(0.1, 0), (0.9, 1)]
    report = ab_report(tmp_path)
    assert report["duplicate_feedback"] == 1
    assert "1 later outcomes for a row ignored (the first counts)" in report_lines(report)[0]
