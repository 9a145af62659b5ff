"""``ctr-pipeline registry ...``: inspect, promote, roll back, verify and clean the registry.

Human-readable tables by default; ``--json`` prints one JSON document for scripts.
Errors are :class:`RegistryError` subclasses, printed by ``ml.cli`` as ``error: ...``:
exit 2 for what the user can fix, 3 for the environment (disk full, I/O error, lock
timeout: a retry is safe); ``verify`` exits 1 when a file differs from its manifest.
"""

from __future__ import annotations

import argparse
from typing import Any

from ml.cli_common import add_registry_root, emit, table
from ml.errors import UserError
from ml.fsutil import display_path
from ml.registry import journal
from ml.registry.cleanup import DEFAULT_GC_MIN_AGE
from ml.registry.layout import PRODUCTION, STAGES, STAGING
from ml.registry.model_registry import ModelRegistry


def common_options() -> argparse.ArgumentParser:
    """The options every ``registry`` subcommand takes: ``--base-dir`` and ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    add_registry_root(common)
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return common


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the registry's own subcommands to ``ctr-pipeline registry``."""
    _add_reading_commands(sub, common)
    _add_writing_commands(sub, common)


def _add_reading_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "list", parents=[common], help="models and their versions; with NAME, one row a version"
    )
    p.add_argument("name", nargs="?", default=None, help="show this model's versions")
    p.add_argument("--stage", choices=[*STAGES, "all"], default="all")
    p.add_argument(
        "--last", type=_non_negative, default=20, help="with NAME: newest N versions (0: all)"
    )
    p.set_defaults(func=_list)

    p = sub.add_parser("show", parents=[common], help="metadata and files of one version")
    p.add_argument("name")
    p.add_argument("ref", nargs="?", default="latest", help="vN, latest or current")
    p.add_argument("--stage", choices=STAGES, default=None)
    p.set_defaults(func=_show)

    p = sub.add_parser("latest", parents=[common], help="the highest version in a stage")
    p.add_argument("name")
    p.add_argument("--stage", choices=STAGES, default=STAGING)
    p.set_defaults(func=_latest)

    p = sub.add_parser("history", parents=[common], help="registrations, promotions, rollbacks")
    p.add_argument("name")
    p.set_defaults(func=_history)

    p = sub.add_parser("verify", parents=[common], help="recompute digests against manifests")
    p.add_argument("name")
    p.add_argument("versions", nargs="*", help="versions to check (default: all in the stage)")
    p.add_argument("--stage", choices=STAGES, default=STAGING)
    p.set_defaults(func=_verify)


def _add_writing_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("register", parents=[common], help="register a complete training run")
    p.add_argument("run_dir")
    p.add_argument("--name", default="ctr_model")
    p.add_argument("--force", action="store_true", help="new version even if already registered")
    p.add_argument("--dag-id", default=None)
    p.add_argument("--run-id", default=None)
    p.set_defaults(func=_register)

    p = sub.add_parser("promote", parents=[common], help="copy a staging version to production")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--reason", default=None)
    p.add_argument(
        "--force",
        action="store_true",
        help="promote even when the version is worse than production or was tested on "
        "other data (the check is recorded in the history)",
    )
    p.set_defaults(func=_promote)

    p = sub.add_parser("rollback", parents=[common], help="point current at the previous version")
    p.add_argument("name")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=_rollback)

    p = sub.add_parser("canary", parents=[common], help="send a share of traffic to a version")
    p.add_argument("name")
    p.add_argument("version", nargs="?", default=None, help="vN (omit with --off)")
    p.add_argument("--traffic", type=float, default=0.1, help="share of users (default: 0.1)")
    p.add_argument("--off", action="store_true", help="turn the canary off")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=_canary)

    p = sub.add_parser("delete", parents=[common], help="soft-delete (archive) a version")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--stage", choices=STAGES, default=STAGING)
    p.add_argument("--force", action="store_true", help="even if it is production's current")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=_delete)

    p = sub.add_parser(
        "gc", parents=[common], help="remove what crashed writers left; --keep-last N: retention"
    )
    p.add_argument(
        "--min-age",
        type=float,
        default=DEFAULT_GC_MIN_AGE,
        help="only leftovers older than this many seconds (default: %(default)g)",
    )
    p.add_argument(
        "--keep-last",
        type=_non_negative,
        default=None,
        metavar="N",
        help="also purge versions beyond the newest N per stage (never production's current, "
        "its rollback target or anything younger than a day); a dry run unless --apply",
    )
    p.add_argument("--apply", action="store_true", help="with --keep-last: really delete")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_gc)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _registry(args: argparse.Namespace) -> ModelRegistry:
    return ModelRegistry(args.base_dir)


def _list(args: argparse.Namespace) -> int:
    if args.name is not None:
        return _list_versions(args)
    reg = _registry(args)
    stages = STAGES if args.stage == "all" else (args.stage,)
    data = {stage: reg.list_models(stage) for stage in stages}
    rows = []
    for stage in stages:
        for name, versions in data[stage].items():
            current = reg.current_version(name) if stage == PRODUCTION else None
            shown = versions if len(versions) <= 8 else [*versions[:3], "...", *versions[-4:]]
            rows.append((stage, name, len(versions), versions[-1], current, " ".join(shown)))
    lines = (
        table(("stage", "model", "count", "latest", "current", "versions"), rows)
        if rows
        else [f"no models under {reg.base_dir}"]
    )
    emit(args, data if args.stage == "all" else data[args.stage], lines)
    return 0


def _list_versions(args: argparse.Namespace) -> int:
    reg = _registry(args)
    records = reg.versions(args.name, last=args.last or None)
    if args.stage != "all":
        records = [r for r in records if args.stage in r["stages"]]
    if not records:
        reg.get_latest_version(args.name, PRODUCTION if args.stage == PRODUCTION else STAGING)
    rows = [
        (
            r["version"],
            ", ".join(r["stages"]) + (" (current)" if r["current"] else ""),
            (r["created_at"] or "")[:19].replace("T", " "),
            _metric(r["test_auc"]),
            _metric(r["test_logloss"]),
            _producer(r),
        )
        for r in records
    ]
    lines = table(("version", "stage", "created (UTC)", "test_auc", "logloss", "run"), rows)
    emit(args, records, lines)
    return 0


def _metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def _producer(record: dict[str, Any]) -> str:
    if record.get("dag_id") and record.get("run_id"):
        return f"{record['dag_id']}/{record['run_id']}"
    return display_path(record["run_dir"]) if record.get("run_dir") else ""


def _show(args: argparse.Namespace) -> int:
    info = _registry(args).show(args.name, args.ref, args.stage)
    meta = info["metadata"]
    metrics = meta.get("metrics", {})
    lines = [
        f"{info['name']} {info['version']} ({info['stage']})"
        + ("  <- current" if info["current"] else ""),
        f"  path:        {info['path']}",
        f"  created:     {meta.get('created_at')} by {meta.get('created_by')}",
        f"  source run:  {meta.get('source', {}).get('run_dir')}",
        f"  dag/run id:  {meta.get('source', {}).get('dag_id')} / "
        f"{meta.get('source', {}).get('run_id')}",
        f"  data:        {(meta.get('data_fingerprint') or {}).get('digest')}",
        f"  config:      {meta.get('config_digest')}",
        f"  git commit:  {meta.get('code_version', {}).get('git_commit')}",
        "  metrics:     "
        + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in metrics.items()
            if k.startswith(("test_", "val_"))
        ),
        "  files:",
        *(
            f"    {fname:<14} {entry.get('size', 0):>12,} B  sha256 {entry.get('sha256', '')[:16]}"
            for fname, entry in info["files"].items()
        ),
    ]
    emit(args, info, lines)
    return 0


def _latest(args: argparse.Namespace) -> int:
    version = _registry(args).get_latest_version(args.name, args.stage)
    emit(args, {"name": args.name, "stage": args.stage, "version": version}, [version])
    return 0


def _register(args: argparse.Namespace) -> int:
    from ml.cards.build import try_prepare_run_card

    reg = _registry(args)
    card = try_prepare_run_card(
        args.run_dir,
        args.name,
        registry=reg,
        evaluation_note="registered by hand with `ctr-pipeline registry register`, "
        "so no quality gate was run",
    )
    result = reg.register(
        args.run_dir,
        args.name,
        dag_id=args.dag_id,
        run_id=args.run_id,
        force=args.force,
        extra_files=card.files if card is not None else None,
    )
    verb = "registered" if result.created else "already registered as"
    emit(
        args,
        result.to_dict(),
        [f"✅ Model {verb}: {result.name} {result.version} (staging)", f"   Path: {result.path}"],
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    from ml.cards.promotion import promotion_check
    from ml.errors import UserError

    reg = _registry(args)
    check = promotion_check(reg, args.name, args.version)
    if check.needs_confirmation and not args.force:
        raise UserError(
            "\n".join(
                [
                    f"not promoting {args.name} {args.version}:",
                    *check.lines,
                    "pass --force to promote anyway (and --reason to say why; both are "
                    "recorded in the history)",
                ]
            )
        )
    p = reg.promote_to_production(args.name, args.version, check.audit_reason(args.reason))
    before = p.previous or "none"
    line = (
        f"✅ {p.name} {p.version} promoted to production (current: {before} -> {p.version})"
        if p.changed
        else f"{p.name} {p.version} is already production's current version"
    )
    lines = [*(check.lines if check.production else []), line, f"   Path: {p.path}"]
    emit(args, {**p.to_dict(), "check": check.to_dict()}, lines)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    p = _registry(args).rollback(args.name, args.reason)
    emit(args, p.to_dict(), [f"↩️  {p.name} rolled back: current {p.previous} -> {p.version}"])
    return 0


def _canary(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.off == (args.version is not None):
        raise UserError(
            f"registry canary {args.name}: give a version (e.g. v3 --traffic 0.1) or --off, "
            "not both nor neither"
        )
    if args.off:
        reg.clear_canary(args.name, reason=args.reason)
        emit(args, None, [f"{args.name}: canary off (every user goes to current)"])
        return 0
    setting = reg.set_canary(args.name, args.version, args.traffic, reason=args.reason)
    emit(args, setting, [f"🐤 {args.name}: {args.version} gets {args.traffic:.0%} of users"])
    return 0


def _history(args: argparse.Namespace) -> int:
    events = _registry(args).history(args.name)
    rows = [
        (ev.get("at"), ev.get("event"), journal.describe(ev), ev.get("by"), ev.get("reason") or "")
        for ev in events
    ]
    lines = table(("when", "event", "what", "by", "reason"), rows) if rows else ["no history"]
    emit(args, events, lines)
    return 0


def _verify(args: argparse.Namespace) -> int:
    reg = _registry(args)
    versions = args.versions or reg.list_versions(args.name, args.stage)
    if not versions:
        reg.get_latest_version(args.name, args.stage)  # raises the not-found error
    reports = [reg.verify(args.name, v, args.stage) for v in versions]
    lines = []
    for r in reports:
        lines.append(
            f"{'✅' if r.ok else '❌'} {r.name} {r.version} ({r.stage}): "
            + ("ok" if r.ok else f"{len(r.problems)} problem(s)")
        )
        lines += [f"   {problem}" for problem in r.problems]
    emit(args, [r.to_dict() for r in reports], lines)
    return 0 if all(r.ok for r in reports) else 1


def _delete(args: argparse.Namespace) -> int:
    dest = _registry(args).delete(
        args.name, args.version, args.stage, force=args.force, reason=args.reason
    )
    data = {
        "name": args.name,
        "version": args.version,
        "stage": args.stage,
        "archived_to": str(dest),
    }
    emit(args, data, [f"🗑️  {args.name} {args.version} ({args.stage}) archived to {dest}"])
    return 0


def _gc(args: argparse.Namespace) -> int:
    dry_run = args.dry_run or (args.keep_last is not None and not args.apply)
    report = _registry(args).gc(args.min_age, dry_run=dry_run, keep_last=args.keep_last)
    verbs = ("would remove", "would archive", "would purge")
    if not report.dry_run:
        verbs = ("removed", "archived", "purged")
    lines = [
        f"{verb}: {p}"
        for verb, found in zip(verbs, (report.removed, report.archived, report.purged), strict=True)
        for p in found
    ] + [f"kept: {p}" for p in report.kept]
    if args.keep_last is not None and report.dry_run and report.purged:
        lines.append("dry run: nothing was deleted; pass --apply to purge")
    emit(args, report.to_dict(), lines or ["nothing to clean"])
    return 0
