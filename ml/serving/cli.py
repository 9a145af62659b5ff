"""``ctr-pipeline serve``, ``ctr-pipeline serve report`` and ``ctr-pipeline predict``.

- ``serve``: the HTTP scoring service over production's current version, with an
  optional A/B candidate (``--candidate vN --traffic 0.1`` or ``--ab FILE.yaml``) and a
  shadow version (``--shadow vN``); see docs/serving.md.
- ``serve report``: realised CTR and AUC per variant from the service's logs, with
  confidence intervals and a verdict (better / worse / undecided).
- ``serve token create``: a bearer token for the service, its digest added to a token file.
- ``predict``: batch scoring of parquet/CSV files in bounded memory.

Nothing heavy is imported until a handler runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

from ml import paths
from ml.cli_common import add_command, add_registry_root, from_args
from ml.serving.service.auth import TOKENS_ENV
from ml.serving.service.settings import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_KEY_FIELD,
    DEFAULT_MAX_BATCH,
    ServeSettings,
)


def add_commands(sub: Any) -> None:
    """Register ``serve`` (with ``serve report``) and ``predict``."""
    p = add_command(sub, "serve", _serve)
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address (%(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (%(default)s)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (%(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="rows per request")
    ab = p.add_mutually_exclusive_group()
    ab.add_argument("--candidate", help="A/B: the version that gets --traffic (e.g. v4)")
    ab.add_argument("--ab", metavar="FILE.yaml", help="A/B: candidate, traffic, key, salt, shadow")
    p.add_argument("--traffic", type=float, default=0.0, help="A/B: share of keys (0..1)")
    p.add_argument("--key-field", default=DEFAULT_KEY_FIELD, help="A/B: sticky key (%(default)s)")
    p.add_argument("--salt", default=None, help="A/B: hash salt (default: <model>:<candidate>)")
    p.add_argument("--shadow", help="also score every request with this version (logged only)")
    p.add_argument("--poll-interval", type=float, default=0.25, help="hot reload check (s)")
    p.add_argument(
        "--no-canary",
        dest="follow_canary",
        action="store_false",
        help="ignore the registry's canary setting (a pinned --candidate always does)",
    )
    p.add_argument(
        "--log-features",
        type=float,
        default=0.0,
        metavar="RATE",
        help="log the feature rows of this share of requests, for drift (%(default)s)",
    )
    p.add_argument("--check", action="store_true", help="check the versions, print, exit")
    p.add_argument(
        "--auth",
        choices=("required", "off"),
        default=None,
        help="bearer tokens (default: required unless the bind is loopback with no token)",
    )
    p.add_argument("--token-file", default=None, help=f"tokens and scopes, 0600 (or ${TOKENS_ENV})")
    p.add_argument(
        "--feedback-ttl",
        type=float,
        default=7 * 24 * 3600.0,
        help="accept feedback for request ids up to this many seconds old (%(default)s)",
    )
    serve_sub = p.add_subparsers(dest="serve_command", metavar="SUBCOMMAND")
    r = add_command(serve_sub, "report", _report)
    _common(r)
    r.add_argument("--metric", choices=("auc", "ctr", "logloss"), default="auc", help="%(default)s")
    r.add_argument("--alpha", type=float, default=0.05, help="1 - confidence (%(default)s)")
    r.add_argument("--json", action="store_true", help="print JSON")
    t = add_command(
        serve_sub,
        "token",
        _token_create,
        help="bearer tokens for serve",
        description="Bearer tokens for serve (docs/serving.md, Authentication and limits).",
    )
    token_sub = t.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = add_command(token_sub, "create", _token_create)
    c.add_argument("--scopes", required=True, help="comma-separated: predict,feedback,metrics")
    c.add_argument("--token-file", default=None, help="append the token's digest to this file")
    c.add_argument("--comment", default="", help="a note on the token's line (who uses it)")

    p = add_command(sub, "predict", _predict)
    p.add_argument("--model", required=True, help="NAME (current), NAME/vN or NAME/latest")
    p.add_argument(
        "--input", required=True, help="a .parquet/.csv file or a directory (or s3:// URL)"
    )
    p.add_argument("--output", required=True, help="output .parquet or .csv (or s3:// URL)")
    p.add_argument("--id-column", default=None, help="input column written beside the score")
    p.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows per chunk (%(default)s)"
    )
    add_registry_root(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ctr_model", help="registered model name (%(default)s)")
    add_registry_root(p)
    p.add_argument(
        "--log-dir",
        default=None,
        help="prediction/feedback logs (default: experiments/serving/<model>)",
    )


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """The settings of ``serve``, with ``auth`` resolved for ``--host`` (AuthError if unsafe)."""
    from ml.serving.service.auth import TokenStore, resolve_auth

    settings = from_args(ServeSettings, args, registry_dir=args.base_dir, auth="off")
    if args.ab:
        settings = settings.with_ab_file(args.ab)
        if args.shadow:  # the command line wins over the file
            settings = dataclasses.replace(settings, shadow=args.shadow)
    store = TokenStore(settings.token_path(), os.environ.get(TOKENS_ENV))
    auth = resolve_auth(args.auth, args.host, store.configured)
    return dataclasses.replace(settings, auth=auth).check()


def _auth_line(settings: ServeSettings) -> str:
    if settings.auth == "off":
        return "auth: off (loopback bind: any local user may call every route)"
    sources = [f"--token-file {settings.token_file}"] if settings.token_file else []
    sources += [f"${TOKENS_ENV}"] if os.environ.get(TOKENS_ENV) else []
    return f"auth: required (bearer tokens from {' and '.join(sources)}; /healthz, /readyz open)"


def _serve(args: argparse.Namespace) -> int:
    """HTTP scoring service: hot reload, A/B split, shadow, feedback (docs/serving.md)

    Serve production/<model>/current over HTTP (POST /predict, /feedback; GET /healthz,
    /readyz, /metrics; OpenAPI at /docs). A promotion or rollback, and the registry's
    canary setting (`registry canary`), are picked up without a restart.
    """
    from ml.serving.service.server import preflight, run

    settings = settings_from_args(args)
    for line in [*preflight(settings), _auth_line(settings)]:
        print(line, flush=True)
    if args.check:
        return 0
    print(
        f"Serving on http://{args.host}:{args.port} ({settings.workers} worker(s)); "
        f"docs at /docs; logs in {settings.log_path()}",
        flush=True,
    )
    run(settings, host=args.host, port=args.port)
    return 0


def _report(args: argparse.Namespace) -> int:
    """realised CTR and AUC per variant, and whether the candidate is better

    Join the service's prediction and feedback logs; per variant: CTR (Wilson interval),
    mean score, log loss and AUC (DeLong) with intervals; candidate vs control on --metric
    (auc: DeLong test for independent samples; ctr: two-proportion z-test; logloss: Welch).
    """
    from ml.serving.report.ab import ab_report, report_lines

    log_dir = ServeSettings(model=args.model, log_dir=args.log_dir).log_path()
    report = ab_report(log_dir, alpha=args.alpha, metric=args.metric)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print("\n".join(report_lines(report)))
    return 0


def _token_create(args: argparse.Namespace) -> int:
    """create a bearer token for serve (shown once)

    Print a new random token; with --token-file, append its SHA-256 digest and scopes to
    that file (created 0600; a running service picks it up on its next request), else
    print the line to add. Hand the token to the client: it is not stored anywhere.
    """
    from ml.errors import AuthError
    from ml.serving.service.auth import DIGEST_PREFIX, SCOPES, add_token, digest
    from ml.serving.service.auth import new_token as make_token

    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise AuthError(f"--scopes {args.scopes!r}: use some of {','.join(SCOPES)}")
    if args.token_file:
        path = paths.resolve(args.token_file)
        token = add_token(path, scopes, args.comment)
        where = f"its sha256 digest was added to {path} with scopes {','.join(scopes)}"
    else:
        token = make_token()
        line = f"{DIGEST_PREFIX}{digest(token).hex()} {','.join(scopes)}"
        where = f"add this line to the token file (chmod 600):\n{line}"
    print(f"token (shown once, keep it secret): {token}\n{where}")
    print("clients send: Authorization: Bearer <token>")
    return 0


def _predict(args: argparse.Namespace) -> int:
    """batch-score parquet/CSV files with a registered model

    Score a file or every .parquet/.csv under a directory in chunks; write the id column
    (or row number) and the probability to --output (.parquet or .csv). --input, --output
    and --registry may be URLs (s3://bucket/prefix).
    """
    from ml.registry.model_registry import ModelRegistry
    from ml.serving.batch import score_files, show
    from ml.serving.refs import resolve_ref
    from ml.serving.service.models import load_version

    registry = ModelRegistry(args.base_dir)
    name, stage, version = resolve_ref(registry, args.model)
    model = load_version(registry, name, version, stage)
    if not args.json:
        print(f"Scoring with {model.describe()} (verified)", flush=True)
    report = score_files(
        model.predictor,
        args.input,
        args.output,
        id_column=args.id_column,
        chunk_rows=args.chunk_rows,
        progress=None if args.json else print,
    )
    summary = {
        "model": name,
        "version": version,
        "stage": stage,
        "output": show(report.output),
        "files": report.files,
        "rows": report.rows,
        "seconds": round(report.seconds, 3),
        "rows_per_s": round(report.rows_per_s),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"✅ {report.rows:,} rows from {report.files} file(s) scored into "
            f"{summary['output']} in {report.seconds:.1f} s ({report.rows_per_s:,.0f} rows/s)"
        )
    return 0
