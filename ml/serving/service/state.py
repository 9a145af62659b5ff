"""What one worker process of the scoring service holds: :class:`Service`.

The control model (followed through :class:`~ml.serving.service.models.CurrentWatcher`),
the candidate (pinned, or the registry's canary followed through
:class:`~ml.serving.service.canary.CanaryFollower`) and the shadow, the two append-only
logs (a sample of requests' feature rows too, ``log_features``) and the Prometheus
counters, and the request handling the routes delegate to (``/predict`` reads the control model
once, picks the variant, scores, answers, and logs after the response is sent; the
request id it answers is signed, see :mod:`~ml.serving.service.request_ids`), and
``/feedback`` (one outcome per issued request id and row, see :meth:`Service.record_feedback`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError as FastAPIValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask

from ml.config import FeatureSpec
from ml.errors import BodyTooLargeError, RequestIdRefusedError, RequestValidationError, ServingError
from ml.serving.service.auth import TOKENS_ENV, TokenStore
from ml.serving.service.body import read_body
from ml.serving.service.canary import ActiveCanary, CanaryFollower
from ml.serving.service.metrics import ServingMetrics
from ml.serving.service.models import CurrentWatcher, LoadedModel, load_pinned
from ml.serving.service.outcomes import FEEDBACK_FILE, PREDICTIONS_FILE, AppendLog, now
from ml.serving.service.request_ids import FeedbackLedger, RequestIds, load_or_create_key
from ml.serving.service.schemas import Feedback
from ml.serving.service.settings import CANDIDATE, CONTROL, ServeSettings, choose_variant
from ml.serving.service.validation import ParsedRequest, parse_predict

log = logging.getLogger("ml.serving")


def _union_spec(models: list[LoadedModel]) -> FeatureSpec:
    cat: dict[str, None] = {}
    num: dict[str, None] = {}
    for m in models:
        cat.update(dict.fromkeys(m.predictor.features.categorical))
        num.update(dict.fromkeys(c for c in m.predictor.features.numeric if c not in cat))
    return FeatureSpec(categorical=tuple(cat), numeric=tuple(num))


def _jsonable(values: Any) -> list[Any]:
    """A column of a parsed request as JSON values (NaN → null)."""
    out = values.tolist() if hasattr(values, "tolist") else list(values)
    return [None if isinstance(v, float) and math.isnan(v) else v for v in out]


class Service:
    """The models, logs and counters of one worker process."""

    def __init__(self, settings: ServeSettings, registry: Any = None) -> None:
        from ml.registry.model_registry import ModelRegistry

        self.settings = settings.check()
        self.registry = registry or ModelRegistry(settings.registry_dir)
        self.metrics = ServingMetrics()
        self._specs: tuple[tuple[int, int], FeatureSpec] | None = None
        self.watcher = CurrentWatcher(
            self.registry,
            settings.model,
            poll_interval=settings.poll_interval,
            on_event=self._on_reload,
        )
        self.candidate = self._pinned(settings.candidate, CANDIDATE)
        self.shadow = self._pinned(settings.shadow, "shadow")
        self.canary: CanaryFollower | None = None
        self._canary_version: str | None = None
        if settings.follow_canary and self.candidate is None:
            self.canary = CanaryFollower(self.registry, settings.model, on_change=self._on_canary)
            self.canary.poll()
            self.watcher.also_poll.append(self.canary.poll)
        log_dir = settings.log_path()
        self.tokens = self._tokens()
        self.ids = RequestIds(load_or_create_key(log_dir), settings.feedback_ttl)
        self.ledger = FeedbackLedger()
        self.predictions = AppendLog(log_dir / PREDICTIONS_FILE)
        self.feedback = AppendLog(log_dir / FEEDBACK_FILE)

    def _tokens(self) -> TokenStore | None:
        """The tokens with ``auth: required`` (raises ServingError without any), else None."""
        if self.settings.auth == "off":
            return None
        store = TokenStore(self.settings.token_path(), os.environ.get(TOKENS_ENV))
        if not store.configured:
            raise ServingError(
                f"auth is required but neither --token-file nor ${TOKENS_ENV} holds a token"
            )
        return store

    def _pinned(self, version: str | None, role: str) -> LoadedModel | None:
        if version is None:
            return None
        model = load_pinned(self.registry, self.settings.model, version)
        log.info("%s: %s (verified, %.2f s)", role, model.describe(), model.load_seconds)
        self.metrics.set_serving(role, version)
        return model

    def _on_reload(self, outcome: str, version: str) -> None:
        self.metrics.reloads.labels(outcome).inc()
        if outcome == "loaded":
            previous = getattr(getattr(self, "watcher", None), "model", None)
            self.metrics.set_serving(CONTROL, version, previous.version if previous else None)

    def _on_canary(self, active: ActiveCanary | None) -> None:
        before = self._canary_version
        self._canary_version = active.model.version if active is not None else None
        if active is not None:
            self.metrics.set_serving(CANDIDATE, active.model.version, before)
        elif before is not None:
            self.metrics.serving.labels(CANDIDATE, before).set(0)

    def routing(self) -> tuple[LoadedModel | None, float, str]:
        """The candidate, its traffic share and salt: pinned, else the canary, else none."""
        if self.candidate is not None:
            return self.candidate, self.settings.traffic, self.settings.experiment_salt
        active = self.canary.active if self.canary is not None else None
        if active is None:
            return None, 0.0, ""
        return active.model, active.traffic, active.salt

    def spec(self, control: LoadedModel, candidate: LoadedModel | None = None) -> FeatureSpec:
        """The columns a request must carry: every loaded model's (cached per pair)."""
        candidate = candidate or self.candidate
        key = (id(control), id(candidate))
        cached = self._specs
        if cached is None or cached[0] != key:
            models = [m for m in (control, candidate, self.shadow) if m is not None]
            cached = self._specs = (key, _union_spec(models))
        return cached[1]

    def close(self) -> None:
        self.watcher.stop()
        self.predictions.close()
        self.feedback.close()

    # --- /predict -----------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        start = time.perf_counter()
        request_id = uuid.uuid4().hex  # until the rows are known: then a signed id
        try:
            body = await read_body(request, self.settings.max_body_bytes)
        except BodyTooLargeError as exc:
            rows = f" (send at most {self.settings.max_batch} rows per request)"
            return self._reject(413, "body_too_large", request_id, f"{exc}{rows}")
        control = self.watcher.model  # read once: this request never sees another version
        candidate, traffic, salt = self.routing()  # the same: one candidate per request
        try:
            parsed = parse_predict(
                body,
                self.spec(control, candidate),
                max_batch=self.settings.max_batch,
                key_field=self.settings.key_field,
            )
        except RequestValidationError as exc:
            return self._reject(422, str(exc.errors[0]["type"]), request_id, exc.errors)
        request_id = self.ids.issue(parsed.rows)
        variant, model = CONTROL, control
        if candidate is not None:
            variant = choose_variant(parsed.key or request_id, salt, traffic)
            model = candidate if variant == CANDIDATE else control
        try:
            scores = model.scorer.predict_proba(parsed).tolist()
        except Exception as exc:  # never let one request take the worker down
            log.exception("request %s: scoring with %s failed", request_id, model.describe())
            msg = f"scoring failed ({type(exc).__name__}: {exc}); request id {request_id}"
            return self._reject(500, "scoring_failed", request_id, msg)
        payload = {
            "request_id": request_id,
            "model": model.name,
            "version": model.version,
            "variant": variant,
            "probabilities": scores,
        }
        self.metrics.observe(
            variant, model.version, len(scores), sum(scores), time.perf_counter() - start
        )
        record = {"at": now(), **payload}
        rate = self.settings.log_features
        if rate and random.random() < rate:
            record["features"] = parsed.columns  # made JSON in the background task
        task = (
            BackgroundTask(self._log_with_shadow, record, parsed)
            if self.shadow is not None
            else BackgroundTask(self._log, record)
        )
        return Response(
            json.dumps(payload, separators=(",", ":")),
            media_type="application/json",
            headers={"X-Request-ID": request_id},
            background=task,
        )

    def _reject(
        self, status: int, reason: str, request_id: str, detail: Any, endpoint: str = "predict"
    ) -> JSONResponse:
        self.metrics.rejected.labels(endpoint, reason).inc()
        return JSONResponse(
            {"detail": detail, "request_id": request_id or None},
            status_code=status,
            headers={"X-Request-ID": request_id} if request_id else None,
        )

    async def _log(self, record: dict[str, Any]) -> None:
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        record.pop("model", None)
        record["scores"] = record.pop("probabilities")
        if "features" in record:
            record["features"] = {c: _jsonable(v) for c, v in record["features"].items()}
        try:
            self.predictions.append(record)
        except OSError as exc:
            log.error("cannot log request %s: %s", record.get("request_id"), exc)

    def _log_with_shadow(self, record: dict[str, Any], parsed: ParsedRequest) -> None:
        shadow = self.shadow
        assert shadow is not None
        try:
            scores = shadow.scorer.predict_proba(parsed).tolist()
            record["shadow"] = {"version": shadow.version, "scores": scores}
            self.metrics.shadow_rows.labels(shadow.version).inc(len(scores))
            self.metrics.shadow_score_sum.labels(shadow.version).inc(sum(scores))
        except Exception as exc:
            log.exception("shadow %s failed on request %s", shadow.version, record["request_id"])
            record["shadow"] = {"version": shadow.version, "error": str(exc)}
        self._append(record)

    # --- the rest ---------------------------------------------------------------------

    async def record_feedback(self, request: Request) -> Response:
        """Append an outcome for rows of a request this service scored, once per row.

        Refused, nothing written: a body over ``max_feedback_bytes`` (413), invalid (422),
        an id not issued here (404), expired (410), a row not scored (422), a row whose
        outcome this worker already recorded (409).
        """
        try:
            body = await read_body(request, self.settings.max_feedback_bytes)
        except BodyTooLargeError as exc:
            return self._reject(413, "body_too_large", "", str(exc), "feedback")
        try:
            fb = Feedback.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            loc_errors = [{**e, "loc": ("body", *e["loc"])} for e in errors]
            raise FastAPIValidationError(loc_errors) from None
        rid = fb.request_id
        values = fb.clicked if isinstance(fb.clicked, list) else [fb.clicked]
        rows = range(fb.row, fb.row + len(values))
        try:
            issued = self.ids.check(rid)
        except RequestIdRefusedError as exc:
            status = 410 if exc.reason == "expired_request" else 404
            return self._reject(status, exc.reason, rid, str(exc), "feedback")
        if rows.stop > issued.rows:
            msg = (
                f"request {rid} scored {issued.rows} row(s) (rows 0..{issued.rows - 1}); "
                f"this feedback covers rows {rows.start}..{rows.stop - 1}"
            )
            return self._reject(422, "row_out_of_range", rid, msg, "feedback")
        taken = self.ledger.claim(rid, rows)
        if taken:
            msg = f"an outcome for request {rid} row(s) {taken} was already recorded (kept)"
            return self._reject(409, "duplicate", rid, msg, "feedback")
        clicks = [int(v) for v in values]
        record = {"at": now(), "request_id": rid, "row": fb.row}
        record["clicked"] = clicks if isinstance(fb.clicked, list) else clicks[0]
        try:
            self.feedback.append(record)
        except OSError:
            self.ledger.release(rid, rows)
            raise
        for c in clicks:
            self.metrics.feedback.labels(str(bool(c)).lower()).inc()
        return JSONResponse({"request_id": rid, "recorded": len(clicks)}, status_code=202)

    def readiness(self) -> dict[str, Any]:
        def info(m: LoadedModel | None) -> dict[str, Any] | None:
            return None if m is None else {"version": m.version, "stage": m.stage}

        candidate, traffic, _ = self.routing()
        return {
            "status": "ready",
            "model": self.settings.model,
            "control": info(self.watcher.model),
            "candidate": info(candidate),
            "traffic": traffic,
            "canary": self.canary is not None and self.canary.active is not None,
            "shadow": info(self.shadow),
            "last_reload_error": self.watcher.last_error
            or (self.canary.last_error if self.canary else None),
            "pid": os.getpid(),
        }
