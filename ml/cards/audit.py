"""A version's audit trail on its model card: what happened to it after it was registered.

The card itself is written once, at registration; the trail comes from the registry's
history (``registry history``) when the card is shown: canary changes (who started and
ended it, the ``deploy_model`` run, the verdict, who rejected it), promotions (the
approver, or ``approval: auto``, with the verdict and the run), rollbacks (by a person,
or by ``watch_production`` with the degraded figure) and deletions. The Models page
(``ml.cards.webapp``) puts :func:`html` above the card it serves; ``registry card`` and
the ``card.md`` route append :func:`markdown`.
"""

from __future__ import annotations

import html as _html
from collections.abc import Mapping, Sequence
from typing import Any

from ml.registry import journal

TITLE = "Deployment history"


def version_events(registry: Any, name: str, version: str) -> list[dict[str, Any]]:
    """The history events that concern ``version`` (it was registered, set as or removed
    from the canary, promoted to or from, rolled back to or from), newest first."""
    out = []
    for ev in reversed(registry.history(name)):
        if version in (ev.get("version"), ev.get("to"), ev.get("from")):
            out.append(ev)
    return out


def _row(ev: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        str(ev.get("at") or "")[:19],
        str(ev.get("event") or ""),
        journal.describe(ev, arrow="→", missing="–"),
        str(ev.get("by") or "–"),
        str(ev.get("reason") or ""),
    )


def markdown(events: Sequence[Mapping[str, Any]], version: str) -> list[str]:
    """The trail as Markdown lines (a heading and a table; a line when it is empty)."""
    lines = [f"## {TITLE} of {version}", ""]
    if not events:
        return [*lines, "Nothing since its registration."]
    lines += ["| when (UTC) | event | what | by | reason |", "|---|---|---|---|---|"]
    for row in map(_row, events):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return lines


def html(events: Sequence[Mapping[str, Any]], version: str) -> str:
    """The trail as a self-styled HTML section (it sits inside the card's own page, as
    wide as the card: ``main`` of ``ml.cards.render``)."""
    h = _html.escape
    cell = "text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top"
    short = f"style='{cell};white-space:nowrap'"
    head = "".join(f"<th {short}>{c}</th>" for c in ("when (UTC)", "event", "what", "by", "reason"))
    rows = "".join(
        "<tr>"
        + "".join(f"<td {short}>{h(c)}</td>" for c in _row(ev)[:4])
        + f"<td style='{cell}'>{h(_row(ev)[4])}</td></tr>"
        for ev in events
    )
    body = (
        f"<table data-testid='card-history' style='border-collapse:collapse;width:100%'>"
        f"<tr>{head}</tr>{rows}</table>"
        if events
        else "<p style='color:#59636e'>Nothing since its registration.</p>"
    )
    return (
        "<section style='font:13px -apple-system,Segoe UI,Roboto,Arial,sans-serif;"
        "max-width:1080px;margin:0 auto;padding:12px 24px 0;box-sizing:border-box;"
        "overflow-x:auto'>"
        f"<h3 style='margin:4px 0'>{TITLE} of {h(version)}</h3>{body}</section>"
    )
