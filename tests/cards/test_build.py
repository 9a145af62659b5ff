"""Model cards of registered versions: what the pipeline adds, by hand, and for older ones."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from ml.cards.build import version_card_dir
from ml.cards.files import CACHE_DIR, CARD_FILES, CARD_HTML, CARD_MD, PLOT_FILES
from ml.cli import main as cli_main
from ml.registry.model_registry import ModelRegistry
from ml.training import run_dir as rd


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        im.verify()  # raises on a broken PNG
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return im.size


def test_pipeline_card_is_in_the_version_and_covered_by_the_manifest(shared_home: Any) -> None:
    vdir = shared_home.registry_dir / "staging" / "ctr_model" / "v2"
    manifest = json.loads((vdir / "MANIFEST.json").read_text())["files"]
    for name in CARD_FILES:
        assert (vdir / name).is_file(), name
        assert name in manifest, f"{name} is not covered by the manifest"
    report = ModelRegistry("models").verify("ctr_model", "v2")
    assert report.ok, report.problems
    for name in PLOT_FILES:
        width, height = _png_size((vdir / name).read_bytes())
        assert width >= 400 and height >= 250, (name, width, height)


def test_html_card_embeds_every_plot_and_needs_no_other_file(shared_home: Any) -> None:
    vdir = shared_home.registry_dir / "staging" / "ctr_model" / "v2"
    text = (vdir / CARD_HTML).read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == len(PLOT_FILES)
    embedded = {base64.b64decode(b) for b in images}
    assert embedded == {(vdir / name).read_bytes() for name in PLOT_FILES}
    # Self-contained: no link, script or image that would need a server or another file.
    assert not re.search(r"(src|href)=['\"](?!data:)", text)
    assert "<script" not in text


def test_card_content_of_a_pipeline_registration(shared_home: Any) -> None:
    md = (shared_home.registry_dir / "staging" / "ctr_model" / "v2" / CARD_MD).read_text()
    metrics = rd.read_metrics(shared_home.run_b)
    info = rd.read_run_info(shared_home.run_b)
    assert md.startswith("# Model card: ctr_model v2")
    assert "| family | dcnv2 |" in md and f"| parameters | {metrics['n_params']:,} |" in md
    assert f"| test AUC | {metrics['test_auc']:.4f} |" in md
    # Gates the version passed, with the baseline gate it was measured against.
    for gate in ("min_auc", "min_accuracy", "champion", "baseline"):
        assert re.search(rf"\| passed \| {gate} \|", md), gate
    # Production at registration time, on the same rows.
    assert "Production was v1; both scored on the same 450 test rows" in md
    # Lineage, vocabulary, training, hardware, the DAG run, the config.
    assert info["data_fingerprint"]["digest"] in md
    assert "| test split | 450 rows, base CTR" in md
    assert "| user_id" in md and "OOV limit (data.max_oov_share): 50.0%" in md
    assert "train samples/s" in md and "| device | cpu |" in md
    assert "| torch | " in md and "| scikit-learn | " in md
    assert "| DAG / run | training_pipeline / manual__b |" in md
    assert "```yaml\nexperiment_name: ctr_model" in md
    assert "## Limitations" in md and "test split has only 450 rows" in md


def test_first_version_says_there_was_no_production_model(shared_home: Any) -> None:
    md = (shared_home.registry_dir / "staging" / "ctr_model" / "v1" / CARD_MD).read_text()
    assert "Not compared: there was no production model at registration time." in md
    assert "| passed | baseline |" not in md  # the gate was off for this run


def test_promote_copies_the_card_and_verifies(own_home: Any) -> None:
    registry = ModelRegistry("models")
    registry.promote_to_production("ctr_model", "v2")
    prod = own_home.registry_dir / "production" / "ctr_model" / "v2"
    assert (prod / CARD_HTML).read_bytes() == (
        own_home.registry_dir / "staging" / "ctr_model" / "v2" / CARD_HTML
    ).read_bytes()
    assert registry.verify("ctr_model", "v2", "production").ok


def _copy_run(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    (dest / rd.TEST_PREDICTIONS).unlink()
    return dest


def test_register_by_hand_rebuilds_predictions_from_the_recorded_features(
    own_home: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(own_home.run_b, own_home.home / "experiments" / "runs" / "by_hand")
    assert cli_main(["registry", "register", str(run)]) == 0
    assert "ctr_model v3" in capsys.readouterr().out
    vdir = own_home.registry_dir / "staging" / "ctr_model" / "v3"
    md = (vdir / CARD_MD).read_text()
    assert all((vdir / name).is_file() for name in PLOT_FILES)
    assert "Production was v1; both scored on the same 450 test rows" in md
    assert "Not evaluated: registered by hand with `ctr-pipeline registry register`" in md
    assert ModelRegistry("models").verify("ctr_model", "v3").ok


def test_register_by_hand_without_features_writes_a_card_saying_why(own_home: Any) -> None:
    run = _copy_run(own_home.run_b, own_home.home / "experiments" / "runs" / "no_data")
    info = json.loads((run / rd.RUN_JSON).read_text())
    info["features_dir"] = str(own_home.home / "gone")
    (run / rd.RUN_JSON).write_text(json.dumps(info))
    assert cli_main(["registry", "register", str(run)]) == 0
    vdir = own_home.registry_dir / "staging" / "ctr_model" / "v3"
    md = (vdir / CARD_MD).read_text()
    assert "No plots or production comparison: the test split the run trained with" in md
    assert "is gone, so no predictions could be made" in md
    assert "Not compared: the test split the run trained with" in md
    assert (vdir / "plot_training.png").is_file()  # the history needs no predictions
    assert not (vdir / "plot_roc.png").exists()
    assert ModelRegistry("models").verify("ctr_model", "v3").ok


def test_older_version_gets_its_card_rendered_into_the_cache(
    own_home: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = ModelRegistry("models")
    old = registry.register(own_home.run_b, "ctr_model", force=True)  # no extra files: "old"
    before = sorted(p.name for p in old.path.iterdir())
    assert CARD_HTML not in before
    assert cli_main(["registry", "card", "ctr_model", old.version]) == 0
    out = capsys.readouterr().out
    cache = own_home.registry_dir / CACHE_DIR / "ctr_model" / old.version
    assert f"🪪 Model card: {cache / CARD_HTML} (rendered into the card cache)" in out
    assert "# Model card: ctr_model v3" in out
    md = (cache / CARD_MD).read_text()
    assert "rendered later from v3's registered files" in md
    assert "registered before model cards; its gate results were not recorded" in md
    assert "the production model at registration time was not recorded" in md
    assert (cache / "plot_roc.png").is_file()  # its recorded test split still exists
    # The published version is untouched and still verifies.
    assert sorted(p.name for p in old.path.iterdir()) == before
    assert registry.verify("ctr_model", old.version).ok
    # The cache is reused, not rendered again.
    mtime = (cache / CARD_HTML).stat().st_mtime_ns
    assert version_card_dir(registry, "ctr_model", old.version) == cache
    assert (cache / CARD_HTML).stat().st_mtime_ns == mtime


def test_card_command_shows_a_published_card_and_opens_it(
    shared_home: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    assert cli_main(["registry", "card", "ctr_model", "v2", "--open", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    html = shared_home.registry_dir / "staging" / "ctr_model" / "v2" / CARD_HTML
    assert [e["event"] for e in data.pop("history")] == ["register"]  # its audit trail
    assert data == {
        "name": "ctr_model",
        "version": "v2",
        "html": str(html),
        "markdown": str(html.with_name(CARD_MD)),
        "cached": False,
    }
    assert opened == [html.as_uri()]


def test_card_command_ends_with_the_versions_deployment_history(
    own_home: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ml.registry.model_registry import ModelRegistry

    ModelRegistry("models").set_canary(
        "ctr_model", "v2", 0.2, by="deploy_model", reason="deploy_model manual__9: canary started"
    )
    assert cli_main(["registry", "card", "ctr_model", "v2"]) == 0
    out = capsys.readouterr().out
    trail = out[out.index("## Deployment history of v2") :]
    assert "| canary | v2 at 20% | deploy_model | deploy_model manual__9: canary started |" in trail
    assert trail.index("| canary |") < trail.index("| register |")  # newest first


def test_card_of_an_unknown_version_is_a_user_error(
    shared_home: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["registry", "card", "ctr_model", "v9"]) == 2
    assert "v9" in capsys.readouterr().err


def test_run_summary_records_the_card_path(shared_home: Any) -> None:
    from ml.pipeline.summary import read_summary

    summary = read_summary("training_pipeline", "manual__b")
    assert summary is not None
    assert summary["card_path"] == "models/staging/ctr_model/v2/model_card.html"


def test_a_card_that_cannot_be_rendered_does_not_stop_the_registration(
    own_home: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from ml.cards.build import prepare_run_card

    card = prepare_run_card(own_home.run_b, "ctr_model")
    del card.content["metrics"]  # a rendering bug
    version = ModelRegistry("models").register(
        own_home.run_b, "ctr_model", force=True, extra_files=card.files
    )
    assert version.created and not (version.path / CARD_HTML).exists()
    assert "Model card of v3 not rendered" in caplog.text
