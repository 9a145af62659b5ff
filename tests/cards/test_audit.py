"""ml.cards.audit: a version's deployment history, picked from the model's history."""

from __future__ import annotations

from typing import Any

from ml.cards import audit

EVENTS: list[dict[str, Any]] = [
    {"at": "2026-12-07T10:00:00Z", "event": "register", "stage": "staging", "version": "v1"},
    {"at": "2026-12-07T10:01:00Z", "event": "register", "stage": "staging", "version": "v2"},
    {"at": "2026-12-07T10:02:00Z", "event": "canary", "version": "v2", "traffic": 0.1,
     "by": "deploy_model", "reason": "deploy_model manual__1: canary started"},
    {"at": "2026-12-07T10:30:00Z", "event": "canary", "version": None, "from": "v2",
     "by": "deploy_model", "reason": "finished, not promoted (rejected by bob | ops)"},
    {"at": "2026-12-07T11:00:00Z", "event": "canary", "version": "v3", "traffic": 0.2},
]  # fmt: skip


class Registry:
    def history(self, name: str) -> list[dict[str, Any]]:
        return EVENTS


def test_version_events_are_the_versions_own_newest_first() -> None:
    events = audit.version_events(Registry(), "ctr_model", "v2")
    assert [(e["event"], e["at"][11:16]) for e in events] == [
        ("canary", "10:30"),
        ("canary", "10:02"),
        ("register", "10:01"),
    ]
    assert audit.version_events(Registry(), "ctr_model", "v9") == []


def test_markdown_and_html_show_who_what_and_why() -> None:
    events = audit.version_events(Registry(), "ctr_model", "v2")
    md = audit.markdown(events, "v2")
    assert md[0] == "## Deployment history of v2"
    off = "| 2026-12-07T10:30:00 | canary | off (was v2) | deploy_model | finished, not promoted"
    assert md[4] == off + " (rejected by bob \\| ops) |"
    assert "| canary | v2 at 10% | deploy_model |" in md[5]
    assert audit.markdown([], "v9")[-1] == "Nothing since its registration."
    html = audit.html(events, "<v2>")
    assert "Deployment history of &lt;v2&gt;" in html and "rejected by bob | ops" in html
    assert "data-testid='card-history'" in html
