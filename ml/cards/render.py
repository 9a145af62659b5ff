"""A card's sections (:func:`ml.cards.content.card_content`) as Markdown and as one
self-contained HTML file (inline CSS, the PNG plots as ``data:`` URIs: it opens from
disk, in a mail attachment or in the Airflow UI with no server behind it).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

from ml.cards import files as cf

PLOT_TITLES = {
    cf.PLOT_ROC: "ROC curve",
    cf.PLOT_PR: "Precision-recall",
    cf.PLOT_CALIBRATION: "Calibration",
    cf.PLOT_SCORES: "Score distribution",
    cf.PLOT_TRAINING: "Training curves",
}
METRIC_LABELS = {
    "test_auc": "test AUC",
    "test_logloss": "test log loss",
    "test_logloss_raw": "test log loss before calibration",
    "test_accuracy": "test accuracy",
    "test_ece": "test calibration error (ECE)",
    "test_mean_score": "test mean predicted CTR",
    "val_auc": "val AUC",
    "val_logloss": "val log loss",
}


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers for people: floats to ``digits``, ints with separators, None as ``–``."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}f}"
    return str(value)


def pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


def _rows(c: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Every key/value table of the card, in order, already formatted."""
    model, data, tr, env, prov = (
        c["model"],
        c["data"],
        c["training"],
        c["environment"],
        c["provenance"],
    )
    arch = ", ".join(f"{k}={v}" for k, v in model["architecture"].items() if k != "name")
    size = model["checkpoint_bytes"]
    code = env["code_version"]
    return {
        "Model": [
            ("family", fmt(model["family"])),
            ("parameters", fmt(model["parameters"])),
            ("checkpoint size", f"{size / 1e6:.2f} MB" if isinstance(size, int) else "–"),
            ("architecture", arch or "–"),
        ],
        "Test metrics": [(METRIC_LABELS.get(k, k), fmt(v)) for k, v in c["metrics"].items()],
        "Data lineage": [
            ("features directory", fmt(data["features_dir"])),
            ("data fingerprint", fmt(data["fingerprint"])),
            *(
                (f"{s['split']} split", f"{fmt(s['rows'])} rows, base CTR {pct(s['base_ctr'])}")
                for s in data["splits"]
            ),
        ],
        "Training": [
            ("monitor / best epoch", f"{fmt(tr.get('monitor'))} / {fmt(tr.get('best_epoch'))}"),
            ("calibration (on the validation split)", fmt(tr.get("calibration"))),
            (
                "epochs run",
                f"{fmt(tr.get('epochs_run'))} (stopped early: {fmt(tr.get('stopped_early'))})",
            ),
            (
                "training time",
                f"{fmt(tr.get('train_time_s'), 1)} s (wall {fmt(tr.get('wall_time_s'), 1)} s)",
            ),
            (
                "throughput",
                f"{fmt(_round(tr.get('samples_per_sec')))} train samples/s"
                + (
                    f", scoring {fmt(_round(tr['scoring_rows_per_sec']))} rows/s"
                    if tr.get("scoring_rows_per_sec")
                    else ""
                ),
            ),
            ("started / finished", f"{fmt(tr.get('started_at'))} / {fmt(tr.get('finished_at'))}"),
            ("seed", fmt(tr.get("seed"))),
            ("resumed from epoch", fmt(tr.get("resumed_from_epoch"))),
        ],
        "Hardware and software": [
            ("device", fmt(env["device"])),
            ("host", f"{fmt(env['hostname'])} ({env['platform']})"),
            *((lib, fmt(v)) for lib, v in env["libraries"].items()),
            (
                "ml package",
                f"{fmt(code.get('package'))}, sources {str(code.get('source_digest') or '–')[:16]}",
            ),
        ],
        "Produced by": [
            ("DAG / run", f"{fmt(prov['dag_id'])} / {fmt(prov['run_id'])}"),
            ("run directory", fmt(prov["run_dir"])),
            ("config digest", fmt(prov["config_digest"])),
            ("card built", f"{c['built_at']} ({c['origin']})"),
        ],
    }


def _round(value: Any) -> Any:
    return round(value) if isinstance(value, float) and value == value else value


def _gate_rows(c: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("passed" if g.get("passed") else "FAILED", str(g.get("name")), str(g.get("message")))
        for g in c["gates"]["results"]
    ]


def _production_lines(c: Mapping[str, Any]) -> tuple[list[tuple[str, str, str, str]], str]:
    """Comparison rows (metric, this model, production, difference) and a sentence."""
    p = c["production"]
    if "note" in p:
        return [], f"Not compared: {p['note']}."
    rows = []
    for k, label in (
        ("auc", "AUC"),
        ("logloss", "log loss"),
        ("accuracy", "accuracy"),
        ("ece", "calibration error"),
    ):
        mine, prod = p["model"][k], p["production"][k]
        rows.append((label, fmt(mine), fmt(prod), f"{mine - prod:+.4f}"))
    d = p["auc_difference"]
    text = (
        f"Production was {p['version']}; both scored on the same {p['rows']:,} test rows. "
        f"AUC difference {d['diff']:+.4f} (95% interval {d['low']:+.4f} to "
        f"{d['high']:+.4f}, DeLong)."
    )
    return rows, text


# --- Markdown -------------------------------------------------------------------------


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(v: str) -> str:
        return v.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return [*out, ""]


def markdown(c: Mapping[str, Any], plot_names: Sequence[str]) -> str:
    """The card as Markdown; plots are referenced by their file names beside it."""
    tables = _rows(c)
    lines = [f"# Model card: {c['name']} {c['version']}", ""]
    lines += _md_table(("", ""), tables["Model"])
    if c.get("model_choice"):
        lines += ["## Model choice", "", choice_text(c["model_choice"]), ""]
        lines += _md_table(CHOICE_HEADER, choice_rows(c["model_choice"]))
    lines += ["## Test metrics", "", *_md_table(("metric", "value"), tables["Test metrics"])]
    lines += ["## Quality gates", ""]
    if c["gates"]["results"]:
        lines += _md_table(("result", "gate", "detail"), _gate_rows(c))
    else:
        lines += [f"Not evaluated: {c['gates']['note']}.", ""]
    rows, text = _production_lines(c)
    lines += ["## Compared with production at registration", "", text, ""]
    if rows:
        lines += _md_table(("metric", "this model", "production", "difference"), rows)
    lines += ["## Limitations", ""]
    lines += [f"- {item}" for item in c["limitations"]] or ["- None found in what was measured."]
    lines += [""]
    if plot_names:
        lines += ["## Plots", ""]
        lines += [f"![{PLOT_TITLES.get(n, n)}]({n})" for n in plot_names] + [""]
    for title in ("Data lineage", "Training", "Hardware and software", "Produced by"):
        lines += [f"## {title}", "", *_md_table(("", ""), tables[title])]
    vocab = c["vocabulary"]
    if vocab["fields"]:
        lines += [
            "## Vocabulary",
            "",
            f"OOV limit (data.max_oov_share): {pct(vocab['max_oov_share'])}",
            "",
        ]
        lines += _md_table(("field", "vocabulary", "OOV train", "OOV val"), _vocab_rows(vocab))
    lines += ["## Config", "", "```yaml", c["config"].rstrip(), "```", ""]
    return "\n".join(lines)


CHOICE_HEADER = ("family", "val AUC", "val log loss", "epochs", "seconds", "note")


def choice_text(choice: Mapping[str, Any]) -> str:
    """The model choice's sentence: which family, by what, in how long."""
    return (
        f"model.name auto chose {choice.get('chosen')}: {choice.get('reason')} "
        f"({fmt(choice.get('seconds'), 1)} s of a {fmt(choice.get('budget_s'), 1)} s budget)."
    )


def choice_rows(choice: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per candidate family (the chosen one marked)."""
    rows: list[tuple[str, ...]] = []
    for cand in choice.get("candidates") or ():
        mark = " ✔" if cand.get("family") == choice.get("chosen") else ""
        note = (cand.get("skipped") and f"skipped: {cand['skipped']}") or cand.get("cut_short")
        rows.append(
            (
                f"{cand.get('family')}{mark}",
                fmt(cand.get("val_auc")),
                fmt(cand.get("val_logloss")),
                fmt(cand.get("epochs")),
                fmt(cand.get("seconds"), 1),
                note or "",
            )
        )
    return rows


def _vocab_rows(vocab: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        (
            f["field"] + (" ⚠" if f["above_limit"] else ""),
            fmt(f["vocab_size"]) + (" hash buckets" if f.get("hashed") else ""),
            pct(f["oov_train"]),
            pct(f["oov_val"]),
        )
        for f in vocab["fields"]
    ]


# --- HTML -----------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
margin:0;background:#f6f8fa}
main{max-width:1080px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:24px;margin:6px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}.sub{color:#59636e;margin:0 0 14px}
section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:4px 16px 12px;
margin:14px 0}table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;
padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}th{color:#59636e;
font-weight:600;font-size:12px}td.k{color:#59636e;width:32%}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.kpi{background:#fff;border:1px solid
#d0d7de;border-radius:8px;padding:8px 14px;min-width:120px}.kpi b{display:block;font-size:20px}
.kpi span{color:#59636e;font-size:12px}.pass{color:#1a7f37;font-weight:600}
.fail{color:#cf222e;font-weight:600}.warn{color:#9a6700}
.plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px}
figure.wide{grid-column:1/-1}figure img{width:100%;height:auto}figcaption{color:#59636e;
font-size:12px}pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:10px;
overflow:auto;font-size:12px}ul.lim li{margin:4px 0}
"""


def _h(value: Any) -> str:
    return html.escape(str(value))


def _html_kv(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td class=k>{_h(k)}</td><td>{_h(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: Any = None) -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in header)
    body = ""
    for r in rows:
        cells = "".join(
            f"<td class={cls(i, v)}>{_h(v)}</td>" if cls and cls(i, v) else f"<td>{_h(v)}</td>"
            for i, v in enumerate(r)
        )
        body += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def _kpis(c: Mapping[str, Any]) -> str:
    m = c["metrics"]
    items = [
        ("test AUC", m.get("test_auc")),
        ("test log loss", m.get("test_logloss")),
        ("test accuracy", m.get("test_accuracy")),
        ("ECE", m.get("test_ece")),
    ]
    prod = c["production"]
    if "auc_difference" in prod:
        items.append((f"AUC vs {prod['version']}", f"{prod['auc_difference']['diff']:+.4f}"))
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><b>{_h(fmt(v))}</b><span>{_h(k)}</span></div>'
            for k, v in items
            if v is not None
        )
        + "</div>"
    )


def html_page(c: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """The card as one HTML document with every plot embedded."""
    tables = _rows(c)
    gate_cls = lambda i, v: ("pass" if v == "passed" else "fail") if i == 0 else None  # noqa: E731
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Model card: "
        f"{_h(c['name'])} {_h(c['version'])}</title><style>{CSS}</style></head><body><main>",
        f"<h1>Model card: {_h(c['name'])} {_h(c['version'])}</h1>",
        f"<p class=sub>{_h(fmt(c['model']['family']))} · {_h(fmt(c['model']['parameters']))} "
        f"parameters · produced by {_h(fmt(c['provenance']['dag_id']))} / "
        f"{_h(fmt(c['provenance']['run_id']))}</p>",
        _kpis(c),
        "<section><h2>Quality gates</h2>",
        _html_table(("result", "gate", "detail"), _gate_rows(c), gate_cls)
        if c["gates"]["results"]
        else f"<p>Not evaluated: {_h(c['gates']['note'])}.</p>",
        "</section>",
    ]
    rows, text = _production_lines(c)
    parts += ["<section><h2>Compared with production at registration</h2>", f"<p>{_h(text)}</p>"]
    if rows:
        parts.append(_html_table(("metric", "this model", "production", "difference"), rows))
    if c.get("model_choice"):
        parts += [
            "</section><section><h2>Model choice</h2>",
            f"<p>{_h(choice_text(c['model_choice']))}</p>",
            _html_table(CHOICE_HEADER, choice_rows(c["model_choice"])),
        ]
    parts += ["</section><section><h2>Limitations</h2><ul class=lim>"]
    parts += [f"<li class=warn>{_h(x)}</li>" for x in c["limitations"]] or [
        "<li>None found in what was measured.</li>"
    ]
    parts.append("</ul></section>")
    if images:
        parts.append("<h2>Plots</h2><div class=plots>")
        for name, data in images.items():
            wide = " class=wide" if name == cf.PLOT_TRAINING else ""
            src = "data:image/png;base64," + base64.b64encode(data).decode()
            title = PLOT_TITLES.get(name, name)
            parts.append(
                f"<figure{wide}><img alt='{_h(title)}' src='{src}'>"
                f"<figcaption>{_h(title)} ({_h(name)})</figcaption></figure>"
            )
        parts.append("</div>")
    for title in (
        "Model",
        "Test metrics",
        "Data lineage",
        "Training",
        "Hardware and software",
        "Produced by",
    ):
        parts.append(f"<section><h2>{_h(title)}</h2>{_html_kv(tables[title])}</section>")
    vocab = c["vocabulary"]
    if vocab["fields"]:
        parts.append(
            f"<section><h2>Vocabulary</h2><p>Out-of-vocabulary limit (data.max_oov_share): "
            f"{_h(pct(vocab['max_oov_share']))}; ⚠ marks a field above it.</p>"
            + _html_table(("field", "vocabulary", "OOV train", "OOV val"), _vocab_rows(vocab))
            + "</section>"
        )
    parts.append(f"<section><h2>Config</h2><pre>{_h(c['config'])}</pre></section>")
    parts.append("</main></body></html>")
    return "".join(parts)
