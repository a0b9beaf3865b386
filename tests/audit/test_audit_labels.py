"""Every action and object type the code base writes to the audit log has a Chinese label.

The scan reads the source (apps/, recordings/, hub/) with ``ast``: string literals
given as ``action=`` / ``object_type=`` (keyword, conditional expression, a
parameter's default, or the positional argument of a helper whose parameter has
that name), and f-string actions by their literal prefix."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from apps.audit import labels
from apps.audit.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["apps", "recordings", "hub"]
CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")  # a dotted audit action code
NAMES = ("action", "object_type")


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _prefixes(node: ast.AST) -> list[str]:
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return [str(node.values[0].value)]
    return []


def scan() -> dict[str, dict[str, set[str]]]:
    """{"action": {...}, "object_type": {...}, "action_prefix": {...}} -> the places they occur."""
    found: dict[str, dict[str, set[str]]] = {"action": {}, "object_type": {}, "action_prefix": {}}

    def add(kind: str, value: str, where: str) -> None:
        found[kind].setdefault(value, set()).add(where)

    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            rel = str(path.relative_to(ROOT))
            # Helpers of this module taking ``action`` / ``object_type`` positionally.
            positions: dict[str, dict[str, int]] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    params = [a.arg for a in node.args.posonlyargs + node.args.args]
                    positions[node.name] = {n: params.index(n) for n in NAMES if n in params}
                    defaults = dict(
                        zip([a.arg for a in node.args.kwonlyargs], node.args.kw_defaults, strict=True)
                    ) | dict(zip(params[len(params) - len(node.args.defaults) :], node.args.defaults, strict=True))
                    for name in NAMES:
                        if name in defaults and defaults[name] is not None:
                            for s in _strings(defaults[name]):
                                add(name, s, f"{rel}:{node.lineno}")
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                where = f"{rel}:{node.lineno}"
                for kw in node.keywords:
                    if kw.arg in NAMES:
                        for s in _strings(kw.value):
                            add(kw.arg, s, where)
                        if kw.arg == "action":
                            for p in _prefixes(kw.value):
                                add("action_prefix", p, where)
                func = node.func.id if isinstance(node.func, ast.Name) else ""
                for name, index in positions.get(func, {}).items():
                    if index < len(node.args):
                        for s in _strings(node.args[index]):
                            add(name, s, where)
    # ``action=`` is also argparse's and the lifecycle's word: only dotted codes are audit actions.
    found["action"] = {k: v for k, v in found["action"].items() if CODE.match(k)}
    found["object_type"] = {k: v for k, v in found["object_type"].items() if k}
    return found


def test_the_scan_finds_the_known_call_sites() -> None:
    # Guards the scanner itself: a scan that found nothing would pass the tests below.
    found = scan()
    assert {"auth.login", "auth.login_failed", "recording.replay", "care.access_denied", "psych.sign"} <= set(
        found["action"]
    )
    assert {"token", "patient", "user", "recording", "consent", "im_conversation", "psych_result"} <= set(
        found["object_type"]
    )
    assert "psych.alert." in found["action_prefix"]


def test_every_action_written_has_a_chinese_label() -> None:
    missing = {code: sorted(where) for code, where in scan()["action"].items() if code not in labels.ACTION_LABELS}
    assert not missing, f"audit actions without a label in apps/audit/labels.py: {missing}"


def test_every_object_type_written_has_a_chinese_label() -> None:
    found = scan()["object_type"]
    missing = {t: sorted(where) for t, where in found.items() if t not in labels.OBJECT_LABELS}
    assert not missing, f"audit object types without a label in apps/audit/labels.py: {missing}"


def test_actions_built_from_a_prefix_have_a_label_for_every_value() -> None:
    from apps.psych.models import AlertEvent

    families = {"psych.alert.": [str(v) for v in AlertEvent.Action.values]}
    prefixes = scan()["action_prefix"]
    unknown = sorted(set(prefixes) - set(families))
    assert not unknown, f"f-string audit actions this test does not know how to expand: {unknown}"
    missing = [p + v for p, values in families.items() for v in values if p + v not in labels.ACTION_LABELS]
    assert not missing


def test_labels_are_chinese_and_results_cover_the_model() -> None:
    han = re.compile(r"[\u4e00-\u9fff]")
    for table in (labels.ACTION_LABELS, labels.OBJECT_LABELS, labels.RESULT_LABELS, labels.DETAIL_KEY_LABELS):
        bad = {k: v for k, v in table.items() if not v or not han.search(v)}
        assert not bad, bad
    assert set(labels.RESULT_LABELS) == set(AuditEvent.Result.values)
    assert labels.RESULT_LABELS == {"ok": "成功", "denied": "拒绝", "failed": "失败"}


@pytest.mark.parametrize(
    ("text", "expected", "unrelated"),
    [
        ("登录", {"auth.login", "auth.login_failed", "auth.logout", "auth.lockout"}, {"patient.create", "audit.read"}),
        ("auth.login", {"auth.login", "auth.login_failed"}, {"auth.logout"}),
        ("录像", {"recording.replay", "recording.start"}, {"auth.login"}),
        ("  ", set(), set()),
    ],
)
def test_actions_match_by_label_or_code(text: str, expected: set[str], unrelated: set[str]) -> None:
    matched = set(labels.actions_matching(text))
    assert expected <= matched
    assert not (unrelated & matched)
