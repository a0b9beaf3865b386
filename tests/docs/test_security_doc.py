"""docs/security.md (the 等保 mapping) cannot go stale silently.

Every ``tests/<path>.py::<test>`` it names must be a test function (or a method
of a ``Test*`` class) in that file, found by parsing the file with ``ast``; a
parametrised id (``test_x[case]``) must name a case written in that file. Every
repository path it quotes in backticks must exist, and every ``settings.NAME``
must be assigned in ``hub/settings.py``. Every row of a mapping table carries
exactly one status, and a row marked 未实现 names the issue that will build it,
a row marked 进行中 the issue-11 finding being built. The document keeps one
section for each section of the shared checklist."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"

STATUSES = ("已实现", "部分实现", "未实现", "进行中")

# The sections of ../shared/domain/security.md, by their English headings.
SOURCE_SECTIONS = (
    "Authentication and sessions",
    "Authorization",
    "Audit",
    "Input and transport",
    "Data protection",
    "Payments",
    "Reliability",
)

TEST_REF = re.compile(
    r"(?P<file>tests/[A-Za-z0-9_/]+\.py)::(?P<name>[A-Za-z_]\w*(?:::[A-Za-z_]\w*)?)(?:\[(?P<param>[^\]`\s]+)\])?"
)
TOP_LEVEL = r"(?:apps|hub|docs|tests|recordings|media_engine|scripts|frontend|bench|\.ci)/"
TOP_FILES = r"(?:pyproject\.toml|manage\.py|Dockerfile|docker-compose\.yml|README\.md)"
PATH_REF = re.compile(rf"`(?P<path>(?:{TOP_LEVEL}[^`\s:]*|{TOP_FILES}))(?:::[^`]*)?`")
SETTING_REF = re.compile(r"`settings\.(?P<name>[A-Z][A-Z0-9_]*)`")
ISSUE_REF = re.compile(r"#\d+")


@cache
def _tests_in(path: Path) -> frozenset[str]:
    """Test names pytest would collect from ``path``: functions, and ``Class::method``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    names.add(f"{node.name}::{item.name}")
    return frozenset(names)


@cache
def _settings_names(root: Path) -> frozenset[str]:
    tree = ast.parse((root / "hub" / "settings.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _row_status(cells: list[str]) -> list[str]:
    return [s for c in cells for s in STATUSES if c == s or c.startswith(s + "（")]


def problems(text: str, root: Path = ROOT) -> list[str]:
    """Everything in ``text`` (the document, or a piece of it) that does not hold."""
    found: list[str] = []
    mapping = False  # inside a table whose header has a 状态 column
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"line {number}"
        for ref in TEST_REF.finditer(line):
            path = root / ref["file"]
            if not path.is_file():
                found.append(f"{where}: no test file {ref['file']}")
                continue
            if ref["name"] not in _tests_in(path):
                found.append(f"{where}: no test {ref['file']}::{ref['name']}")
            elif ref["param"] and not all(
                f'"{part}"' in path.read_text(encoding="utf-8") for part in ref["param"].split("-")
            ):
                found.append(f"{where}: no case [{ref['param']}] in {ref['file']}")
        for ref in PATH_REF.finditer(line):
            if not (root / ref["path"]).exists():
                found.append(f"{where}: no such path {ref['path']}")
        for ref in SETTING_REF.finditer(line):
            if ref["name"] not in _settings_names(root):
                found.append(f"{where}: no setting {ref['name']} in hub/settings.py")
        if not line.lstrip().startswith("|"):
            mapping = False
            continue
        cells = _cells(line)
        if "状态" in cells:
            mapping = True
            continue
        if not mapping or set(line.strip()) <= set("|-: "):
            continue
        status = _row_status(cells)
        if len(status) != 1:
            found.append(f"{where}: a mapping row needs exactly one status of {'/'.join(STATUSES)}")
        elif status == ["未实现"] and not ISSUE_REF.search(line):
            found.append(f"{where}: 未实现 without the issue that builds it (#N)")
        elif status == ["进行中"] and "#11" not in line:
            found.append(f"{where}: 进行中 without its issue-11 finding (#11 发现 N)")
    return found


def test_the_security_doc_references_only_what_exists() -> None:
    assert problems(DOC.read_text(encoding="utf-8")) == []


def test_the_security_doc_covers_every_section_of_the_checklist_and_cites_tests() -> None:
    text = DOC.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    for section in SOURCE_SECTIONS:
        assert any(section in h for h in headings), section
    assert len({m.group(0) for m in TEST_REF.finditer(text)}) >= 100


# --- the checker itself: a bogus line is caught ---------------------------------------------

HEADER = "| 编号 | 要求 | 状态 | 实现位置 | 证明测试 | 说明 |\n|---|---|---|---|---|---|\n"
GOOD = (
    "| 1.1 | 密码复杂度 | 已实现 | `apps/accounts/passwords.py`，`settings.PASSWORD_HISTORY` |"
    " `tests/accounts/test_auth.py::test_password_policy` | |"
)


def test_a_line_that_holds_passes() -> None:
    assert problems(HEADER + GOOD) == []
    assert problems(HEADER + "| 2.1 | 处方 | 未实现 | — | — | 由 #12 实现 |") == []
    assert problems(HEADER + "| 2.2 | 加密 | 进行中（#11 发现 14） | — | — | |") == []
    assert problems("`tests/hub/test_socket.py::test_ending_a_session_closes_the_socket_within_5s[role_change]`") == []
    # Rows of a table without a 状态 column (the probe list) need no status.
    assert problems("| 探测 | 测试文件 |\n|---|---|\n| 上传 | `tests/im/test_upload_guard.py` |") == []


def test_a_test_that_does_not_exist_is_reported() -> None:
    bogus = GOOD.replace("test_password_policy", "test_password_policy_was_renamed")
    assert problems(HEADER + bogus) == ["line 3: no test tests/accounts/test_auth.py::test_password_policy_was_renamed"]


def test_a_test_file_that_does_not_exist_is_reported() -> None:
    assert problems("见 `tests/accounts/test_gone.py::test_x`") == [
        "line 1: no test file tests/accounts/test_gone.py",
        "line 1: no such path tests/accounts/test_gone.py",
    ]


def test_a_parametrised_case_that_does_not_exist_is_reported() -> None:
    line = "`tests/hub/test_socket.py::test_ending_a_session_closes_the_socket_within_5s[reboot]`"
    assert problems(line) == ["line 1: no case [reboot] in tests/hub/test_socket.py"]


def test_a_repo_path_or_setting_that_does_not_exist_is_reported() -> None:
    assert problems("实现于 `apps/accounts/no_such_module.py` 与 `docs/adr/9999-nothing.md`") == [
        "line 1: no such path apps/accounts/no_such_module.py",
        "line 1: no such path docs/adr/9999-nothing.md",
    ]
    assert problems("设置 `settings.PASSWORD_NEVER_EXPIRES`") == [
        "line 1: no setting PASSWORD_NEVER_EXPIRES in hub/settings.py"
    ]


def test_a_row_without_a_status_or_an_unbuilt_row_without_its_issue_is_reported() -> None:
    assert problems(HEADER + "| 9.9 | 支付回调验签 | 尚未 | — | — | |") == [
        "line 3: a mapping row needs exactly one status of 已实现/部分实现/未实现/进行中"
    ]
    assert problems(HEADER + "| 9.9 | 支付回调验签 | 未实现 | — | — | 以后再做 |") == [
        "line 3: 未实现 without the issue that builds it (#N)"
    ]
    assert problems(HEADER + "| 9.9 | 加密 | 进行中 | — | — | 正在做 |") == [
        "line 3: 进行中 without its issue-11 finding (#11 发现 N)"
    ]
