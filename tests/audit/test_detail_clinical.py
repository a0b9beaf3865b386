"""Issue 11, finding 14 (ADR 0038): audit details hold ids and codes only, never
clinical content (notes, message text, answers, scale flags, scores).

One test runs the psych and IM flows and reads every audit row written; the other
reads the source: a ``detail`` given to ``audit_record`` / ``AuditEntry`` with a key
from the deny-list fails it, whoever adds it later."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.psych.services import ALERT_AUDIT_KEYS
from tests.security import clinical_flow as cf

ROOT = Path(__file__).resolve().parents[2]

# Keys an audit detail never carries: clinical content or free text goes in the
# owning app's (encrypted) columns; the audit row names them by id.
DENIED_KEYS = frozenset(
    {
        "critical", "flags", "flag", "answers", "answer", "draft_answers", "note", "notes", "body", "text",
        "content", "message", "diagnosis", "score", "raw_score", "standard_score", "severity", "band",
        "band_label", "label", "rule", "rule_code", "item", "value", "summary", "advice",
    }
)  # fmt: skip


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {str(k) for k in value} | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.django_db
def test_the_psych_and_im_flows_audit_ids_and_codes_only(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        flow = cf.run()
    rows = list(AuditEvent.objects.order_by("id").values("action", "object_type", "object_id", "detail"))
    actions = {r["action"] for r in rows}
    # The flow did write the audit rows this test is about.
    assert {"psych.assign", "psych.submit", "psych.sign", "psych.alert.raised", "psych.alert.notified"} <= actions
    assert {"psych.alert.acknowledged", "psych.alert.closed"} <= actions
    for row in rows:
        text = cf.plain(row["detail"])
        for secret in (*cf.SECRETS, *cf.CLINICAL_WORDS):
            assert secret not in text, (row["action"], secret, row["detail"])
        assert not _keys(row["detail"]) & DENIED_KEYS, (row["action"], row["detail"])
    submit = next(r for r in rows if r["action"] == "psych.submit")
    assert submit["detail"] == {"assignment": flow.assignment.pk, "scale": "PHQ-9"}
    raised = next(r for r in rows if r["action"] == "psych.alert.raised")
    assert raised["object_id"] == str(flow.alert.pk) and raised["detail"] == {"doctor": flow.doctor.user.pk}
    # The alert's notes are not copied in plain into the transition events either.
    reasons = TransitionEvent.objects.filter(object_type="psych.alert").values_list("reason", flat=True)
    assert len(reasons) == 2 and not any(reasons)


def _audit_calls(tree: ast.AST) -> list[tuple[int, str, ast.expr]]:
    """(line, callee, detail expression) of every audit_record / AuditEntry call."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name in ("audit_record", "AuditEntry"):
            found += [(node.lineno, name, k.value) for k in node.keywords if k.arg == "detail"]
    return found


def _literal_keys(expr: ast.expr) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(expr):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "dict":
            keys |= {k.arg for k in node.keywords if k.arg}
    return keys


def test_no_audit_detail_in_the_code_uses_a_denied_key() -> None:
    offenders = []
    seen = 0
    for path in sorted([*ROOT.glob("apps/**/*.py"), *ROOT.glob("hub/**/*.py")]):
        if "migrations" in path.parts:
            continue
        for line, callee, expr in _audit_calls(ast.parse(path.read_text(), str(path))):
            seen += 1
            bad = _literal_keys(expr) & DENIED_KEYS
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}:{line} {callee}(detail=...) {sorted(bad)}")
    assert seen > 20  # the scan does find the audit calls
    assert offenders == [], "audit details hold ids and codes only (ADR 0038):\n" + "\n".join(offenders)
    # Alert steps pass their detail through an allow-list into the audit chain.
    assert not ALERT_AUDIT_KEYS & DENIED_KEYS


def test_the_scan_catches_a_denied_key() -> None:
    """The negative case: the scan does flag what it must."""
    source = 'audit_record(action="x", detail={"assignment": 1, "critical": ["suicide_risk"]})\n'
    source += 'AuditEntry(action="y", object_type="t", object_id=1, detail=dict(note="n"))\n'
    keys = [_literal_keys(expr) & DENIED_KEYS for _, _, expr in _audit_calls(ast.parse(source))]
    assert keys == [{"critical"}, {"note"}]
