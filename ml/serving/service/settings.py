"""What a scoring service serves and how: :class:`ServeSettings`, the A/B file, routing.

Light on purpose (no torch, no FastAPI): the CLI builds the settings, checks them and
hands them to each uvicorn worker as JSON in ``$CTR_SERVING_SETTINGS``.

A/B split: a request's *key* (its ``key`` field, else the first row's ``key_field``,
``user_id`` by default) is hashed with the experiment's ``salt``
(``blake2b(salt + key)`` → a number in [0, 1)); keys below ``traffic`` go to the
candidate. The same key always lands on the same variant (sticky), across requests,
workers and restarts, and changing the salt reshuffles users. A request without a key
is routed by its request id (random, so the shares still hold).

The A/B file (``--ab FILE.yaml``)::

    candidate: v3      # the version under test (production copy if promoted, else staging)
    traffic: 0.1       # share of keys sent to it, 0 < traffic < 1
    key: user_id       # the row field that identifies a user (default user_id)
    salt: exp-2024-11  # optional; default: "<model>:<candidate>"
    shadow: v4         # optional: also score every request with v4, log only
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ml import paths
from ml.errors import ServingError, UserError

SETTINGS_ENV = "CTR_SERVING_SETTINGS"
#: Where the prediction and feedback logs go, per model, under the base directory.
SERVING_DIR = "experiments/serving"
DEFAULT_MAX_BATCH = 1024
#: Rows per chunk of batch scoring (``ctr-pipeline predict``): bounds its memory.
DEFAULT_CHUNK_ROWS = 16_384
DEFAULT_KEY_FIELD = "user_id"
CONTROL = "control"
CANDIDATE = "candidate"
AB_KEYS = frozenset({"candidate", "traffic", "key", "salt", "shadow"})
_HASH_SCALE = float(1 << 64)


@dataclass(frozen=True)
class ServeSettings:
    """Everything a worker needs to build the app (JSON round-trips through the env)."""

    model: str = "ctr_model"
    registry_dir: str | None = None  # None: $CTR_PIPELINE_REGISTRY, else models
    log_dir: str | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    max_body_bytes: int = 32 << 20
    candidate: str | None = None
    traffic: float = 0.0
    key_field: str = DEFAULT_KEY_FIELD
    salt: str | None = None
    shadow: str | None = None
    poll_interval: float = 0.25
    #: torch threads per worker (None: cpu_count // workers, at least 1).
    threads: int | None = None
    workers: int = 1
    #: ``required`` (bearer tokens, see :mod:`~ml.serving.service.auth`) or ``off``.
    auth: str = "off"
    token_file: str | None = None
    #: Feedback is accepted for request ids issued at most this many seconds ago.
    feedback_ttl: float = 7 * 24 * 3600.0
    max_feedback_bytes: int = 1 << 20
    #: follow the registry's canary setting (ignored with a pinned ``candidate``)
    follow_canary: bool = True
    #: share of requests whose feature rows are logged (``features``), for drift
    log_features: float = 0.0

    def check(self) -> ServeSettings:
        """Raise :class:`ServingError` naming the first bad value; return self."""
        from ml.registry.layout import validate_name, validate_version

        try:
            validate_name(self.model)
            for v in (self.candidate, self.shadow):
                if v is not None:
                    validate_version(v)
        except UserError as exc:
            raise ServingError(str(exc)) from exc
        if not 1 <= self.max_batch <= 1_000_000:
            raise ServingError(f"max batch must be in [1, 1000000], got {self.max_batch}")
        if self.candidate is not None and not 0.0 < self.traffic < 1.0:
            raise ServingError(
                f"--traffic must be strictly between 0 and 1 with a candidate, got {self.traffic}"
            )
        if self.candidate is None and self.traffic:
            raise ServingError("--traffic needs --candidate vN (the version to send it to)")
        if self.workers < 1 or (self.threads is not None and self.threads < 1):
            raise ServingError("--workers and --threads must be at least 1")
        if not self.key_field:
            raise ServingError("the A/B key field must not be empty")
        if self.auth not in ("required", "off"):
            raise ServingError(f"--auth must be 'required' or 'off', got {self.auth!r}")
        if not 0.0 <= self.log_features <= 1.0:
            raise ServingError(f"--log-features must be in [0, 1], got {self.log_features}")
        if not self.feedback_ttl > 0:
            raise ServingError(f"--feedback-ttl must be > 0 seconds, got {self.feedback_ttl}")
        return self

    @property
    def experiment_salt(self) -> str:
        return self.salt if self.salt is not None else f"{self.model}:{self.candidate}"

    def log_path(self) -> Path:
        """The directory of ``predictions.jsonl`` and ``feedback.jsonl``."""
        return paths.resolve(self.log_dir or f"{SERVING_DIR}/{self.model}")

    def token_path(self) -> Path | None:
        return None if self.token_file is None else paths.resolve(self.token_file)

    def torch_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.workers)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        return cls(**json.loads(text))

    def with_ab_file(self, path: str | os.PathLike[str]) -> ServeSettings:
        """These settings with the A/B file's values (see the module doc)."""
        return dataclasses.replace(self, **read_ab_file(path))


def read_ab_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The A/B file as ServeSettings fields (``key`` → ``key_field``).

    Raises:
        ServingError: unreadable, not a mapping, an unknown key or a wrong type.
    """
    file = paths.resolve(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ServingError(f"cannot read the A/B file {file}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ServingError(f"{file} must be a mapping with candidate, traffic, key, salt, shadow")
    unknown = sorted(set(raw) - AB_KEYS)
    if unknown:
        raise ServingError(f"{file}: unknown key(s) {unknown}; allowed: {sorted(AB_KEYS)}")
    if "candidate" not in raw or "traffic" not in raw:
        raise ServingError(f"{file}: 'candidate' (vN) and 'traffic' (0..1) are required")
    traffic = raw["traffic"]
    if isinstance(traffic, bool) or not isinstance(traffic, (int, float)):
        raise ServingError(f"{file}: traffic must be a number, got {traffic!r}")
    out: dict[str, Any] = {"candidate": str(raw["candidate"]), "traffic": float(traffic)}
    for key, target in (("key", "key_field"), ("salt", "salt"), ("shadow", "shadow")):
        if raw.get(key) is not None:
            if not isinstance(raw[key], (str, int)) or isinstance(raw[key], bool):
                raise ServingError(f"{file}: {key} must be a string, got {raw[key]!r}")
            out[target] = str(raw[key])
    return out


def bucket(key: str, salt: str) -> float:
    """The key's position in [0, 1) for this experiment (uniform, deterministic)."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


def choose_variant(key: str, salt: str, traffic: float) -> str:
    """``candidate`` for the first ``traffic`` share of keys, else ``control``."""
    return CANDIDATE if traffic > 0.0 and bucket(key, salt) < traffic else CONTROL
