"""Prometheus metrics of the scoring service, aggregated across uvicorn workers.

Per variant (``control`` / ``candidate``) and version: requests, rows and the sum of
the returned probabilities, from which ``ctr_serving_mean_score`` is computed at scrape
time; the same for shadow scoring; rejected requests by reason; ``/predict`` latency;
reloads by outcome; and which version each variant serves.

With ``--workers N`` the CLI points ``$PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start; each worker then writes its values to memory-mapped files
there (``prometheus_client``'s multiprocess mode) and ``/metrics``, whichever worker
answers, sums them all. Without it the values live in this process.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServingMetrics:
    """The service's counters (one instance per app)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        reg = self.registry = CollectorRegistry(auto_describe=True)
        # Every metric is named ctr_serving_<name>: prometheus joins namespace_subsystem_name.
        names: dict[str, Any] = {"namespace": "ctr", "subsystem": "serving", "registry": reg}
        variant = ["variant", "version"]

        def counter(name: str, doc: str, labels: list[str]) -> Any:
            return Counter(name, doc, labels, **names)

        self.requests = counter("requests", "Scored /predict requests", variant)
        self.rows = counter("rows", "Scored rows", variant)
        self.score_sum = counter("score_sum", "Sum of the returned probabilities", variant)
        self.shadow_rows = counter("shadow_rows", "Rows scored by the shadow model", ["version"])
        self.shadow_score_sum = counter(
            "shadow_score_sum",
            "Sum of the shadow model's (never returned) probabilities",
            ["version"],
        )
        self.rejected = counter(
            "rejected_requests",
            "Requests answered with a 4xx/5xx status, by endpoint and reason",
            ["endpoint", "reason"],
        )
        self.feedback = counter("feedback", "Outcomes recorded by /feedback", ["clicked"])
        self.reloads = counter("reloads", "Hot reloads of production/current", ["outcome"])
        self.latency = Histogram(
            "predict_seconds",
            "/predict handling time (parse, validate, score, encode)",
            ["variant"],
            buckets=LATENCY_BUCKETS,
            **names,
        )
        self.serving = Gauge(
            "model_version",
            "1 for the version each variant serves now",
            variant,
            multiprocess_mode="mostrecent",
            **names,
        )

    def observe(self, variant: str, version: str, rows: int, score_sum: float, s: float) -> None:
        self.requests.labels(variant, version).inc()
        self.rows.labels(variant, version).inc(rows)
        self.score_sum.labels(variant, version).inc(score_sum)
        self.latency.labels(variant).observe(s)

    def set_serving(self, variant: str, version: str, previous: str | None = None) -> None:
        if previous is not None and previous != version:
            self.serving.labels(variant, previous).set(0)
        self.serving.labels(variant, version).set(1)

    def _source(self) -> Any:
        if not self.multiprocess:
            return self.registry
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged

    def render(self) -> bytes:
        """The exposition text, with the mean score per variant and version appended."""
        from prometheus_client import generate_latest

        source = self._source()
        sums: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for family in source.collect():
            for sample in family.samples:
                if sample.name in ("ctr_serving_rows_total", "ctr_serving_score_sum_total"):
                    key = (sample.labels["variant"], sample.labels["version"])
                    sums[key][sample.name == "ctr_serving_score_sum_total"] += sample.value
        lines = [
            "# HELP ctr_serving_mean_score Mean returned probability per variant and version",
            "# TYPE ctr_serving_mean_score gauge",
        ]
        for (variant, version), (rows, total) in sorted(sums.items()):
            if rows:
                lines.append(
                    f'ctr_serving_mean_score{{variant="{variant}",version="{version}"}} '
                    f"{total / rows!r}"
                )
        return bytes(generate_latest(source)) + ("\n".join(lines) + "\n").encode()
