"""``ctr-pipeline registry card|compare`` and ``ctr-pipeline runs list|show|compare|prune``.

``ml/cli.py`` adds :func:`add_registry_commands` to the ``registry`` group and
:func:`add_run_commands` to the ``runs`` group. Heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
from typing import Any

from ml import paths
from ml.cli_common import add_registry_root, emit, non_negative_int, table
from ml.errors import ConfigError

#: Bootstrap resamples for the AUC interval (ml.cards.stats.DEFAULT_BOOTSTRAP; not
#: imported from there so that `ctr-pipeline --help` does not import scikit-learn).
DEFAULT_BOOTSTRAP = 1000


def _compare_options(p: argparse.ArgumentParser, default_data: str) -> None:
    p.add_argument(
        "--features-dir", default=None, help=f"score on this data (default: {default_data})"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        metavar="N",
        help="bootstrap resamples for the AUC interval (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")


def _compare_args(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``compare_versions``/``compare_runs`` from the options."""
    return {
        "features_dir": args.features_dir,
        "split": args.split,
        "n_boot": args.bootstrap,
        "seed": args.seed,
    }


# --- registry card / compare ------------------------------------------------------------


def add_registry_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``card`` and ``compare`` to ``ctr-pipeline registry``."""
    p = sub.add_parser("card", parents=[common], help="a version's model card")
    p.add_argument("name")
    p.add_argument("version", help="vN")
    p.add_argument("--open", action="store_true", help="open the HTML card in a browser")
    p.set_defaults(func=_card)

    p = sub.add_parser(
        "compare", parents=[common], help="score versions on the same split, side by side"
    )
    p.add_argument("name")
    p.add_argument("versions", nargs="+", metavar="VERSION", help="two or more: v1 v2 ...")
    _compare_options(p, "the newest version's test split")
    p.set_defaults(func=_registry_compare)


def _card(args: argparse.Namespace) -> int:

    from ml.cards import audit
    from ml.cards.build import version_card_dir
    from ml.cards.files import CACHE_DIR, CARD_HTML, CARD_MD
    from ml.registry.model_registry import ModelRegistry

    registry = ModelRegistry(args.base_dir)
    where = version_card_dir(registry, args.name, args.version)
    html, md = where / CARD_HTML, where / CARD_MD
    cached = registry.cache_dir(CACHE_DIR) in where.parents
    data = {
        "name": args.name,
        "version": args.version,
        "html": str(html),
        "markdown": str(md),
        "cached": cached,
    }
    events = audit.version_events(registry, args.name, args.version)
    data["history"] = events
    lines = [md.read_text(encoding="utf-8").rstrip(), ""] if md.is_file() else []
    lines += [*audit.markdown(events, args.version), ""]
    lines.append(f"🪪 Model card: {html}" + (" (rendered into the card cache)" if cached else ""))
    emit(args, data, lines)
    if args.open:
        import webbrowser

        webbrowser.open(html.as_uri())
    return 0


def _registry_compare(args: argparse.Namespace) -> int:
    from ml.cards.compare import compare_versions, comparison_lines
    from ml.registry.model_registry import ModelRegistry

    registry = ModelRegistry(args.base_dir)
    result = compare_versions(registry, args.name, args.versions, **_compare_args(args))
    emit(args, result, comparison_lines(result))
    return 0


# --- runs ------------------------------------------------------------------------------


def add_run_commands(sub: Any) -> None:
    """Add ``list``, ``show``, ``compare`` and ``prune`` to ``ctr-pipeline runs``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--runs-dir", default=None, help="default: the default config's output.runs_dir"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser("list", parents=[common], help="every training run and its metrics")
    p.add_argument("--last", type=int, default=None, metavar="N", help="only the newest N")
    p.set_defaults(func=_runs_list)

    p = sub.add_parser("show", parents=[common], help="one run: metrics, provenance, config")
    p.add_argument("run", help="a run directory name, a path, or 'latest'")
    p.set_defaults(func=_runs_show)

    p = sub.add_parser("compare", parents=[common], help="score runs on the same split")
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more run names or paths")
    _compare_options(p, "the newest run's test split")
    p.set_defaults(func=_runs_compare)

    p = sub.add_parser(
        "prune",
        help="remove old run directories (dry run unless --apply)",
        description="Keep the newest --keep-last complete runs and every run a registered "
        "version came from; remove the others older than --older-than days.",
    )
    p.add_argument("--config", default=paths.DEFAULT_CONFIG, help="for output.runs_dir")
    p.add_argument("--runs-dir", default=None, help="overrides the config's output.runs_dir")
    p.add_argument(
        "--keep-last", type=non_negative_int, default=20, help="newest complete runs kept (20)"
    )
    p.add_argument("--older-than", type=float, default=30.0, help="days (30)")
    p.add_argument(
        "--include-registered",
        action="store_true",
        help="also remove runs that registered versions came from",
    )
    add_registry_root(p)  # whose versions' runs are kept
    p.add_argument("--apply", action="store_true", help="really delete (default: dry run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_runs_prune)


def _f(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _runs_list(args: argparse.Namespace) -> int:
    from ml.cards.runs import list_runs
    from ml.registry.model_registry import ModelRegistry

    records = list_runs(args.runs_dir, registry=ModelRegistry())
    if args.last:
        records = records[-args.last :]
    header = (
        "run",
        "state",
        "model",
        "test_auc",
        "logloss",
        "val_auc",
        "epochs",
        "train_s",
        "dag run",
        "registered",
    )
    rows = [
        (
            r["name"],
            r["state"],
            _f(r["model"]),
            _f(r["test_auc"]),
            _f(r["test_logloss"]),
            _f(r["val_auc"]),
            f"{_f(r['best_epoch'])}/{_f(r['epochs_run'])}",
            _f(r["train_time_s"], 1),
            f"{r['dag_id']} / {r['run_id']}" if r["dag_id"] else "-",
            ", ".join(r["registered"]) or "-",
        )
        for r in records
    ]
    emit(args, records, table(header, rows) if rows else ["no training runs"])
    return 0


def _runs_show(args: argparse.Namespace) -> int:
    from ml.cards.runs import resolve_run, show_run
    from ml.registry.model_registry import ModelRegistry

    info = show_run(resolve_run(args.run, args.runs_dir), registry=ModelRegistry())
    m, ri = info["metrics"], info["run_info"]
    lines = [
        f"{info['name']} ({info['state']})",
        f"  path:        {info['path']}",
        f"  model:       {_f(m.get('model'))}, {_f(m.get('n_params'))} parameters",
        "  metrics:     "
        + ", ".join(f"{k}={_f(v)}" for k, v in m.items() if k.startswith(("test_", "val_"))),
        f"  epochs:      best {_f(m.get('best_epoch'))} of {_f(m.get('epochs_run'))} "
        f"(monitor {_f(m.get('monitor'))}, stopped early: {_f(m.get('stopped_early'))})",
        f"  time:        {_f(m.get('train_time_s'), 1)} s training, "
        f"{_f(m.get('samples_per_sec'), 0)} samples/s on {_f(ri.get('device'))}",
        f"  data:        {_f(ri.get('features_dir'))} "
        f"(digest {str((ri.get('data_fingerprint') or {}).get('digest'))[:12]})",
        f"  dag run:     {_f(ri.get('dag_id'))} / {_f(ri.get('run_id'))}",
        f"  started:     {_f(ri.get('started_at'))}, finished {_f(ri.get('finished_at'))}",
        f"  registered:  {', '.join(info['registered']) or '-'}",
        f"  files:       {' '.join(info['files'])}",
    ]
    for h in m.get("history") or []:
        lines.append(
            f"    epoch {h.get('epoch')}: loss {_f(h.get('train_loss'))}, val AUC "
            f"{_f(h.get('val_auc'))}, val logloss {_f(h.get('val_logloss'))}"
        )
    emit(args, info, lines)
    return 0


def _runs_compare(args: argparse.Namespace) -> int:
    from ml.cards.compare import compare_runs, comparison_lines
    from ml.cards.runs import resolve_run

    result = compare_runs([resolve_run(r, args.runs_dir) for r in args.runs], **_compare_args(args))
    emit(args, result, comparison_lines(result))
    return 0


def _runs_prune(args: argparse.Namespace) -> int:
    from ml.config import load_config
    from ml.fsutil import display_path
    from ml.training.retention import prune_runs

    if args.older_than < 0:
        raise ConfigError(f"--older-than must be >= 0 days, got {args.older_than}")
    runs_dir = args.runs_dir or load_config(args.config).output.runs_dir
    report = prune_runs(
        runs_dir,
        keep_last=args.keep_last,
        older_than_days=args.older_than,
        include_registered=args.include_registered,
        registry=args.base_dir,
        dry_run=not args.apply,
    )
    verb = "would remove" if report.dry_run else "removed"
    mb = report.freed_bytes / 2**20
    tail = " (dry run: pass --apply to delete)" if report.dry_run else ""
    lines = [f"{verb}: {display_path(run)}" for run in report.removed]
    lines += [f"kept: {display_path(run)} ({why})" for run, why in report.kept]
    lines.append(f"{len(report.removed)} run(s), {mb:.1f} MiB {verb}{tail}")
    emit(args, report.to_dict(), lines)
    return 0
