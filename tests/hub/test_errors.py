"""One error pattern (issue 9): the code tables, the one renderer, the plain views through it."""

from __future__ import annotations

import importlib
import json
import re
import uuid
from enum import StrEnum

import pytest
from django.test import Client

from apps.core.lifecycle import TransitionRefused
from apps.media.errors import MediaCode, MediaError
from apps.psych.errors import PsychCode, PsychError
from hub import errors as hub_errors
from hub.errors import ApiError, ErrorSpec, HubCode, HubError, NotFound, declared_codes, error_response, errors

CJK = re.compile(r"[\u4e00-\u9fff]")
_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
# Every app's errors.py, found on disk, so a new app is checked without editing this list.
_APP_ERRORS = [
    *(_ROOT / "apps").glob("*/errors.py"),
    *(_ROOT / "apps").glob("*/*/errors.py"),  # packages inside an app with codes of their own (commerce.payments)
    _ROOT / "recordings" / "errors.py",
]
ERROR_MODULES = ["hub.errors", *sorted(".".join(p.relative_to(_ROOT).with_suffix("").parts) for p in _APP_ERRORS)]


def _bound_types() -> list[type[ApiError]]:
    found: list[type[ApiError]] = []
    for name in ERROR_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, ApiError)
                and value is not ApiError
                and value.__module__ == name
                and "table" in value.__dict__
            ):
                found.append(value)
    return found


def test_every_app_has_one_bound_error_type() -> None:
    owners = {t.__module__ for t in _bound_types()}
    assert owners == set(ERROR_MODULES)
    assert len(_bound_types()) == len(ERROR_MODULES)


@pytest.mark.parametrize("kind", _bound_types(), ids=lambda t: t.__name__)
def test_every_code_has_a_status_and_a_chinese_message(kind: type[ApiError]) -> None:
    codes = kind.codes
    assert codes is not None and issubclass(codes, StrEnum)
    assert {str(c) for c in codes} == set(kind.table)
    for code in codes:
        spec = kind.table[code]
        assert isinstance(spec, ErrorSpec)
        assert 400 <= spec.status <= 599, code
        assert CJK.search(spec.message), f"{code}: {spec.message!r} has no Chinese"
        assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", str(code)), code


def test_codes_are_unique_across_apps() -> None:
    seen: dict[str, str] = {}
    for kind in _bound_types():
        for code in kind.table:
            assert code not in seen, f"{code} in {kind.__name__} and {seen[code]}"
            seen[code] = kind.__name__
    assert set(seen) == set(declared_codes())


def test_a_second_table_with_a_known_code_is_refused() -> None:
    class Dup(StrEnum):
        X = "psych.scale_unknown"

    with pytest.raises(AssertionError, match="declared twice"):

        class DupError(ApiError):
            codes = Dup
            table = {Dup.X: ErrorSpec(422, "重复")}

    assert declared_codes()["psych.scale_unknown"].message == "量表 {scale} 不存在或已停用"


def test_the_table_gives_status_message_and_the_detail_fills_the_template() -> None:
    exc = PsychError(PsychCode.SCALE_UNKNOWN, scale="PHQ9")
    assert (exc.code, exc.status, exc.message, exc.detail) == (
        "psych.scale_unknown",
        422,
        "量表 PHQ9 不存在或已停用",
        {"scale": "PHQ9"},
    )
    # A detail key may be called "status" (the transition refusals carry one).
    refused = PsychError(PsychCode.TRANSITION_REFUSED, "x不能", status="submitted", action="cancel")
    assert refused.status == 409 and refused.detail == {"status": "submitted", "action": "cancel"}
    with pytest.raises(LookupError):
        PsychError(HubCode.NOT_FOUND)


def test_the_renderer_builds_the_one_body() -> None:
    response = error_response(PsychError(PsychCode.INCOMPLETE, "第3题未作答", first_missing_item=3))
    assert response.status_code == 422
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "code": "psych.incomplete",
        "message": "第3题未作答",
        "detail": {"first_missing_item": 3},
    }
    assert json.loads(error_response(NotFound("录像")).content) == {
        "code": "not_found",
        "message": "录像不存在或无权访问",
        "detail": {},
    }
    refused = TransitionRefused(code="x.transition_refused", status="a", status_label="甲", action="go")
    assert refused.status == 409 and refused.as_dict()["detail"] == {"status": "a", "action": "go"}


def test_a_node_refusal_is_409_whatever_its_code() -> None:
    for code in ("media.no_publisher", "grant.invalid", "media.something_new", None):
        exc = MediaError.from_node({"ok": False, "code": code, "message": "对方尚未开始推流"})
        assert exc.status == 409
        assert exc.code == (code or "media.refused")
    assert MediaError(MediaCode.NODE_UNAVAILABLE).status == 503


def test_errors_helper_groups_codes_by_status() -> None:
    out = errors(PsychCode.NOT_YOUR_PATIENT, PsychCode.SCALE_UNKNOWN, PsychCode.DUE_INVALID, HubCode.FORBIDDEN)
    assert sorted(out) == [401, 403, 422]
    assert sorted(errors(HubCode.NOT_FOUND, auth=False)) == [404]


def test_no_raise_site_builds_an_api_error_from_a_literal_code() -> None:
    from pathlib import Path

    root = Path(hub_errors.__file__).resolve().parent.parent
    literal = re.compile(r"""(ApiError|Error|Forbidden)\(\s*["'][a-z_]+(\.[a-z_]+)?["']""")
    offenders = []
    for folder in ("apps", "hub", "recordings"):
        for path in (root / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                # Not API errors: the adapters' SendError; media_engine's own MediaError
                # raised for the node's RTMP/FLV authoriser (apps/media/grants.py).
                if literal.search(line) and "SendError" not in line and path.name != "grants.py":
                    offenders.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# --- the plain Django views answer through the renderer -----------------------------------------


@pytest.mark.django_db
def test_whip_errors_come_out_through_the_renderer() -> None:
    client = Client()
    missing = client.post("/media/whip/conv-1", data="v=0", content_type="application/sdp")
    assert missing.status_code == 401
    assert missing.json() == {"code": "grant.missing", "message": "缺少媒体授权凭证", "detail": {}}
    forged = client.post(
        "/media/whip/conv-1", data="v=0", content_type="application/sdp", HTTP_AUTHORIZATION="Bearer abc.def"
    )
    assert forged.status_code == 403 and forged.json()["code"] in ("grant.malformed", "grant.invalid")
    assert set(forged.json()) == {"code", "message", "detail"}
    method = client.get("/media/whip/conv-1")
    assert method.status_code == 405
    assert method.json() == {"code": "method_not_allowed", "message": "不支持的请求方法", "detail": {}}
    trickle = client.patch("/media/whip/conv-1/" + "a" * 32)
    assert trickle.status_code == 405
    assert trickle.json() == {"code": "media.no_trickle", "message": "不支持增量 ICE", "detail": {}}
    bad_session = client.delete("/media/whip/conv-1/short")
    assert bad_session.status_code == 404
    assert bad_session.json() == {"code": "not_found", "message": "会话不存在", "detail": {}}


@pytest.mark.django_db
def test_replay_view_errors_come_out_through_the_renderer() -> None:
    response = Client().get(f"/media/recordings/{uuid.uuid4()}.mp4?grant=abc.def")
    assert response.status_code == 403
    assert response.json() == {"code": "grant.invalid", "message": "授权凭证无效", "detail": {}}


def test_hub_error_from_grant_keeps_the_grant_code() -> None:
    assert HubError.from_grant("grant.expired", "授权凭证已过期").as_dict() == {
        "code": "grant.expired",
        "message": "授权凭证已过期",
        "detail": {},
    }


class _Node:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome

    async def handle(self, command: dict[str, object]) -> dict[str, object]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert isinstance(self.outcome, dict)
        return self.outcome


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        ({"ok": False, "code": "media.no_publisher", "message": "对方尚未开始推流"}, 409, "media.no_publisher"),
        ({"ok": False, "code": "grant.invalid", "message": "授权凭证与命令不符"}, 409, "grant.invalid"),
        ({"ok": False, "code": "media.future_code", "message": "新的拒绝"}, 409, "media.future_code"),
        ({"ok": False}, 409, "media.refused"),
        (TimeoutError(), 503, "media.node_unavailable"),
        (RuntimeError("recorder crashed"), 503, "media.node_unavailable"),
    ],
)
def test_node_call_refusals_are_409_and_failures_503_never_500(
    monkeypatch: pytest.MonkeyPatch, outcome: object, status: int, code: str
) -> None:
    import asyncio

    from channels.exceptions import ChannelFull

    from apps.media import control, embedded

    monkeypatch.setattr(embedded, "is_embedded", lambda node: True)
    monkeypatch.setattr(embedded, "node", lambda: _Node(outcome))
    monkeypatch.setattr(control, "node_grant", lambda *a, **k: "grant")
    with pytest.raises(MediaError) as refused:
        asyncio.run(control.node_call("peer.play", "conv-1", peer="u1", sdp="v=0"))
    assert (refused.value.status, refused.value.code) == (status, code)
    assert set(refused.value.as_dict()) == {"code", "message", "detail"}
    assert ChannelFull in control.UNREACHABLE
