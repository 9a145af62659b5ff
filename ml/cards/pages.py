"""HTML of the Models page (server-rendered; a few lines of script for the buttons).

Shown inside the Airflow UI's frame (the plugin's navigation entry), so every link is
absolute under the app's root path, and confirmations are inline (the UI's sandboxed
frame blocks ``confirm()``). Promote and rollback POST JSON to the app's API; the
server decides whether the user may (the buttons are only hidden for users who may not).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ml.cards.render import fmt
from ml.registry import journal

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1f2328;
margin:0;background:#fff}main{padding:16px 24px 40px;max-width:1400px}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:18px;margin:0}h3{font-size:14px;margin:18px 0 6px;
color:#59636e}.sub{color:#59636e;margin:0 0 12px}a{color:#0969da;text-decoration:none}
a:hover{text-decoration:underline}.model{border:1px solid #d0d7de;border-radius:8px;
padding:14px 16px;margin:14px 0;overflow-x:auto}
.head{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
table{border-collapse:collapse;width:100%;margin:4px 0}th,td{text-align:left;padding:6px 8px;
border-bottom:1px solid #eaeef2;white-space:nowrap}th{color:#59636e;font-size:12px;font-weight:600}
td.wrap{white-space:normal}tr.cur{background:#f0fff4}.badge{display:inline-block;border-radius:10px;
padding:1px 8px;font-size:12px;border:1px solid #d0d7de;color:#59636e;margin-right:4px}
.badge.prod{background:#dafbe1;border-color:#4ac26b;color:#116329}.badge.cur{background:#1a7f37;
border-color:#1a7f37;color:#fff}button{font:inherit;font-size:13px;border:1px solid #d0d7de;
border-radius:6px;background:#f6f8fa;padding:3px 10px;cursor:pointer}
button.primary{background:#1f883d;border-color:#1f883d;color:#fff}button.danger{background:#cf222e;border-color:#cf222e;color:#fff}
button:disabled{opacity:.5;cursor:default}.confirm{display:none;background:#fff8c5;border:1px solid
#d4a72c;border-radius:8px;padding:10px 12px;margin:8px 0}
.confirm input.reason{font:inherit;width:340px;
padding:3px 6px}.msg{margin:8px 0;padding:8px 12px;border-radius:6px;display:none}.msg.err{
display:block;background:#ffebe9;border:1px solid #ff8182}.msg.ok{display:block;background:#dafbe1;
border:1px solid #4ac26b}.muted{color:#59636e}.num{font-variant-numeric:tabular-nums}
.check{white-space:pre-wrap;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;
background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 8px;margin:6px 0}
.check.warn{background:#ffebe9;border-color:#ff8182}
.force{display:none;margin:6px 0;font-weight:600}
"""

SCRIPT = """
function ctrAsk(id){document.querySelectorAll('.confirm').forEach(e=>e.style.display='none');
const e=document.getElementById(id);e.style.display='block';const i=e.querySelector('input.reason');
if(i)i.focus();}
function ctrCancel(id){document.getElementById(id).style.display='none';}
async function ctrCheck(url,id){const box=document.getElementById(id);
const out=box.querySelector('.check');const force=box.querySelector('.force');
const go=box.querySelector('button.primary');go.disabled=true;
out.textContent='Comparing with production…';
try{const r=await fetch(url,{credentials:'same-origin',headers:{'Accept':'application/json'}});
const c=await r.json();
if(!r.ok){out.textContent='Check failed ('+r.status+'): '+(c.detail||'');return;}
out.textContent=c.lines.join('\\n');out.className='check'+(c.needs_confirmation?' warn':'');
if(c.needs_confirmation){force.style.display='block';const f=force.querySelector('input');
f.checked=false;f.onchange=()=>{go.disabled=!f.checked;};}else{go.disabled=false;}
}catch(err){out.textContent=String(err);}}
async function ctrPost(url,id,msgId){const box=document.getElementById(id);
const reason=box.querySelector('input.reason').value||null;const msg=document.getElementById(msgId);
const f=box.querySelector('.force input');const confirm=!!(f&&f.checked);
box.querySelectorAll('button').forEach(b=>b.disabled=true);
try{const r=await fetch(url,{method:'POST',credentials:'same-origin',
headers:{'Content-Type':'application/json','Accept':'application/json'},
body:JSON.stringify({reason:reason,confirm:confirm})});const body=await r.json().catch(()=>({}));
if(!r.ok){msg.className='msg err';msg.textContent='Refused ('+r.status+'): '+
(body.detail||r.statusText);box.querySelectorAll('button').forEach(b=>b.disabled=false);return;}
msg.className='msg ok';msg.textContent=body.message||'Done';setTimeout(()=>location.reload(),600);
}catch(err){msg.className='msg err';msg.textContent=String(err);
box.querySelectorAll('button').forEach(b=>b.disabled=false);}}
"""


def _h(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _q(value: str) -> str:
    return quote(value, safe="")


def page(title: str, body: str, *, script: bool = False) -> str:
    """A whole HTML document."""
    js = f"<script>{SCRIPT}</script>" if script else ""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_h(title)}</title>"
        f"<style>{CSS}</style>{js}</head><body><main>{body}</main></body></html>"
    )


def _stage_badges(record: Mapping[str, Any]) -> str:
    out = ""
    for stage in record["stages"]:
        out += f"<span class='badge{' prod' if stage == 'production' else ''}'>{_h(stage)}</span>"
    if record["current"]:
        out += "<span class='badge cur'>current</span>"
    return out


def _version_rows(
    root: str, name: str, records: Sequence[Mapping[str, Any]], can_edit: bool
) -> str:
    rows = []
    for r in records:
        v = str(r["version"])
        card = f"{root}/view/{_q(name)}/{_q(v)}"
        action = ""
        if can_edit and not r["current"] and "staging" in r["stages"]:
            box = f"promote-{name}-{v}"
            check = f"{root}/models/{_q(name)}/versions/{_q(v)}/promotion-check"
            action = (
                f"<button data-testid='promote-{_h(v)}' onclick=\"ctrAsk('{_h(box)}');"
                f"ctrCheck('{_h(check)}','{_h(box)}')\">Promote…</button>"
            )
        producer = f"{r['dag_id']} / {r['run_id']}" if r.get("dag_id") else "–"
        rows.append(
            f"<tr class='{'cur' if r['current'] else ''}'>"
            f"<td><input type=checkbox name=versions value='{_h(v)}' form='cmp-{_h(name)}'></td>"
            f"<td><a href='{_h(card)}' data-testid='card-{_h(v)}'><b>{_h(v)}</b></a></td>"
            f"<td>{_stage_badges(r)}</td>"
            f"<td class=num>{_h(fmt(r['test_auc']))}</td><td class=num>"
            f"{_h(fmt(r['test_logloss']))}</td><td class=num>{_h(fmt(r['test_accuracy']))}</td>"
            f"<td>{_h(fmt(r['model']))}</td><td>{_h(str(r['created_at'] or '–')[:19])}</td>"
            f"<td class=wrap>{_h(producer)}</td><td><a href='{_h(card)}'>card</a></td>"
            f"<td>{action}</td></tr>"
        )
    head = (
        "<tr><th></th><th>version</th><th>stage</th><th>test AUC</th><th>log loss</th>"
        "<th>accuracy</th><th>model</th><th>created (UTC)</th><th>produced by</th><th></th>"
        "<th></th></tr>"
    )
    return f"<table data-testid='versions-{_h(name)}'>{head}{''.join(rows)}</table>"


def _confirm_boxes(root: str, name: str, records: Sequence[Mapping[str, Any]]) -> str:
    out = []
    for r in records:
        v = str(r["version"])
        box = f"promote-{name}-{v}"
        url = f"{root}/models/{_q(name)}/versions/{_q(v)}/promote"
        out.append(
            f"<div class=confirm id='{_h(box)}'>Promote <b>{_h(name)} {_h(v)}</b> to production"
            " and point <code>current</code> at it?"
            f"<div class=check data-testid='check-{_h(v)}'></div><label class=force>"
            f"<input type=checkbox data-testid='confirm-anyway-{_h(v)}'> Promote anyway: I have"
            " read the comparison (it is recorded in the history)</label>"
            " Reason: <input class=reason placeholder='optional'> "
            f"<button class=primary data-testid='confirm-promote-{_h(v)}' "
            f"onclick=\"ctrPost('{_h(url)}','{_h(box)}','msg-{_h(name)}')\">Promote</button> "
            f"<button onclick=\"ctrCancel('{_h(box)}')\">Cancel</button></div>"
        )
    box = f"rollback-{name}"
    url = f"{root}/models/{_q(name)}/rollback"
    out.append(
        f"<div class=confirm id='{_h(box)}'>Roll <b>{_h(name)}</b> back to the production "
        "version before the current one? Reason: <input class=reason placeholder='optional'> "
        f"<button class=danger data-testid='confirm-rollback' "
        f"onclick=\"ctrPost('{_h(url)}','{_h(box)}','msg-{_h(name)}')\">Roll back</button> "
        f"<button onclick=\"ctrCancel('{_h(box)}')\">Cancel</button></div>"
    )
    return "".join(out)


def _history_table(events: Sequence[Mapping[str, Any]]) -> str:
    if not events:
        return "<p class=muted>No history yet.</p>"
    rows = []
    for ev in events:
        what = journal.describe(ev, arrow="→", missing="–")
        rows.append(
            f"<tr><td>{_h(str(ev.get('at') or '')[:19])}</td><td>{_h(ev.get('event'))}</td>"
            f"<td>{_h(what)}</td><td>{_h(ev.get('by') or '–')}</td>"
            f"<td class=wrap>{_h(ev.get('reason') or '')}</td></tr>"
        )
    head = "<tr><th>when (UTC)</th><th>event</th><th>what</th><th>by</th><th>reason</th></tr>"
    return f"<table data-testid='history'>{head}{''.join(rows)}</table>"


def model_section(
    root: str,
    summary: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    *,
    can_edit: bool,
    more: bool = False,
) -> str:
    """One model: header, actions, versions (with compare), promotion history."""
    name = str(summary["name"])
    current = summary["current"]
    rollback = (
        f"<button data-testid='rollback' onclick=\"ctrAsk('rollback-{_h(name)}')\">"
        "Roll back…</button>"
        if can_edit and current and len(summary["production_versions"]) > 1
        else ""
    )
    more_link = (
        f" · <a href='{_h(root)}/view/{_q(name)}'>all {_plural(summary['versions'], 'version')}</a>"
        if more
        else ""
    )
    return (
        f"<div class=model data-testid='model-{_h(name)}'><div class=head>"
        f"<h2><a href='{_h(root)}/view/{_q(name)}'>{_h(name)}</a></h2>"
        f"<span class=muted>production: <b>{_h(current or 'none')}</b> · "
        f"{_plural(summary['versions'], 'staging version')}{more_link}</span>{rollback}</div>"
        f"<div class=msg id='msg-{_h(name)}'></div>"
        + (_confirm_boxes(root, name, records) if can_edit else "")
        + f"<form id='cmp-{_h(name)}' method=get action='{_h(root)}/view/{_q(name)}/compare'>"
        "<h3>Versions <button type=submit data-testid='compare'>Compare selected</button></h3>"
        "</form>"
        + _version_rows(root, name, records, can_edit)
        + "<h3>History: registrations, canary changes, approvals and rollbacks</h3>"
        + _history_table(events)
        + "</div>"
    )


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def models_page(root: str, sections: Sequence[str], user: str, can_edit: bool) -> str:
    role = (
        "may promote and roll back"
        if can_edit
        else "read only: promote and rollback need permission to edit the training_pipeline DAG"
    )
    body = (
        "<h1>Models</h1>"
        f"<p class=sub>Registered CTR models, their versions and model cards. Signed in as "
        f"<b>{_h(user)}</b> ({_h(role)}). JSON: <a href='{_h(root)}/models'>/models</a></p>"
    )
    body += "".join(sections) or "<p>No registered models yet.</p>"
    return page("Models", body, script=True)


def comparison_page(root: str, name: str, result: Mapping[str, Any], json_href: str) -> str:
    """The comparison of versions as an HTML table (same numbers as ``registry compare``)."""
    from ml.cards.compare import METRICS

    labels = {
        "auc": "AUC",
        "logloss": "log loss",
        "accuracy": "accuracy",
        "ece": "ECE",
        "mean_score": "mean score",
    }
    models, diffs = result["models"], result["differences"]
    head = "".join(f"<th>{_h(m['label'])}</th>" for m in models) + "".join(
        f"<th>{_h(d['b'])} − {_h(d['a'])}</th>" for d in diffs
    )
    rows = "".join(
        f"<tr><td>{labels[k]}</td>"
        + "".join(f"<td class=num>{m[k]:.4f}</td>" for m in models)
        + "".join(f"<td class=num>{d[k]:+.4f}</td>" for d in diffs)
        + "</tr>"
        for k in METRICS
    )
    intervals = "".join(
        f"<li>AUC {_h(d['b'])} − {_h(d['a'])}: <b>{d['auc_interval']['diff']:+.4f}</b>, 95% "
        f"bootstrap interval {d['auc_interval']['low']:+.4f} to {d['auc_interval']['high']:+.4f}"
        f" ({d['auc_interval']['n_boot']} resamples)</li>"
        + (
            f"<li>log loss {_h(d['b'])} − {_h(d['a'])}: <b>{ll['diff']:+.4f}</b>, 95% interval "
            f"{ll['low']:+.4f} to {ll['high']:+.4f} (paired, per row)</li>"
            if (ll := d.get("logloss_interval"))
            else ""
        )
        for d in diffs
    )
    body = (
        f"<p><a href='{_h(root)}/view/{_q(name)}'>← {_h(name)}</a></p>"
        f"<h1>Compare {_h(name)}</h1><p class=sub>Scored on {_h(result['features_dir'])} "
        f"{_h(result['split'])} split: {result['rows']:,} rows, click rate "
        f"{result['base_ctr']:.2%}.</p><table data-testid='comparison'><tr><th>metric</th>"
        f"{head}</tr>{rows}</table><ul>{intervals}</ul>"
        f"<p class=muted>The same as JSON: <a href='{_h(json_href)}'>{_h(json_href)}</a></p>"
    )
    return page(f"Compare {name}", body)


def message_page(root: str, title: str, text: str, *, login: str | None = None) -> str:
    link = f" <a href='{_h(login)}'>Sign in to Airflow</a>." if login else ""
    body = (
        f"<h1>{_h(title)}</h1><p>{_h(text.rstrip('.'))}.{link}</p>"
        f"<p><a href='{_h(root)}/'>All models</a></p>"
    )
    return page(title, body)


def card_bar(root: str, name: str, version: str) -> str:
    """The strip the app puts above a card it serves (back to the model's page)."""
    return (
        "<div style='font:13px -apple-system,Segoe UI,Roboto,Arial,sans-serif;background:#fff;"
        "border-bottom:1px solid #d0d7de;padding:8px 24px'>"
        f"<a style='color:#0969da;text-decoration:none' href='{_h(root)}/view/{_q(name)}'>"
        f"← {_h(name)}</a> <span style='color:#59636e'>· model card of {_h(version)} · "
        f"<a style='color:#0969da' href='{_h(root)}/models/{_q(name)}/versions/{_q(version)}'>"
        "JSON</a></span></div>"
    )
