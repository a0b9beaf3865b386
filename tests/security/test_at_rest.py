"""Issue 11, finding 14 (ADR 0038): clinical free text is encrypted at rest.

Each encrypted column read raw through ``connection.cursor()`` holds ``v1:``
ciphertext and none of the plaintext, while the API and selectors give the plaintext
back; a ciphertext moved to another column does not open there; nothing filters on
these columns in SQL; the migrations convert existing rows both ways."""

from __future__ import annotations

import pytest
from django.core.exceptions import FieldError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.im import selectors as im_selectors
from apps.im.models import Message
from apps.psych.models import AlertEvent, Assignment, Result, ResultReview
from hub import crypto

from . import clinical_flow as cf
from .clinical_flow import Flow


# (table, column, key column, key, plaintext that must not be in the raw column). Every
# forbidden string has a character outside base64's alphabet, so it cannot turn up in
# the ciphertext by chance.
def _columns(flow: Flow) -> list[tuple[str, str, str, int, list[str]]]:
    review = ResultReview.objects.get(result=flow.result)
    ack = AlertEvent.objects.get(alert=flow.alert, action="acknowledged")
    close = AlertEvent.objects.get(alert=flow.alert, action="closed")
    raised = AlertEvent.objects.get(alert=flow.alert, action="raised")
    api_msg = Message.objects.get(client_msg_id="rest-1")
    batch_msg = Message.objects.get(client_msg_id="rest-2")
    card = Message.objects.get(conversation_id=flow.conversation_id, kind="card")
    return [
        ("psych_assignment", "note", "id", flow.assignment.pk, [cf.ASSIGN_NOTE]),
        ("psych_assignment", "draft_answers", "id", flow.assignment.pk, ['"9":']),
        ("psych_result", "answers", "id", flow.result.pk, ['"9":']),
        ("psych_result", "flags", "id", flow.result.pk, [f'"{cf.FLAG_CODE}"', "转诊"]),
        ("psych_result", "critical", "id", flow.result.pk, [f'"{cf.CRITICAL_CODE}"', "自杀"]),
        ("psych_resultreview", "note", "id", review.pk, [cf.REVIEW_NOTE]),
        ("psych_alertevent", "note", "id", ack.pk, [cf.ACK_NOTE]),
        ("psych_alertevent", "note", "id", close.pk, [cf.CLOSE_NOTE]),
        ("psych_alertevent", "detail", "id", raised.pk, [f'"{cf.CRITICAL_CODE}"', '"rule":']),
        ("im_message", "body", "id", api_msg.pk, [cf.API_TEXT, '"text":']),
        ("im_message", "body", "id", batch_msg.pk, [cf.BATCH_TEXT, '"text":']),
        ("im_message", "body", "id", card.pk, ["王五", '"scale_assignment"', '"PHQ-9"']),
    ]


def _raw(table: str, column: str, key: str, value: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {key} = %s", [value])
        (raw,) = cursor.fetchone()
    return raw


def _assert_encrypted(flow: Flow) -> None:
    for table, column, key, value, forbidden in _columns(flow):
        raw = _raw(table, column, key, value)
        assert isinstance(raw, str) and raw.startswith("v1:"), (table, column, raw)
        for text in forbidden:
            assert text not in raw, (table, column, text)


def _assert_readable(flow: Flow) -> None:
    """The API and selectors give the plaintext back."""
    d, p = flow.doctor.api(), flow.account.api()
    report = d.get(f"/psych/results/{flow.result.pk}").json()
    assert report["review"]["note"] == cf.REVIEW_NOTE
    assert {str(i["no"]): i["value"] for i in report["items"]} == cf.DRAFT | cf.ANSWERS
    assert [c["code"] for c in report["critical"]] == [cf.CRITICAL_CODE]
    assert report["flags"] == ["总分≥10，建议转诊进一步评估"]
    alert = d.get(f"/psych/alerts/{flow.alert.pk}").json()
    notes = {e["action"]: e["note"] for e in alert["events"]}
    assert (notes["acknowledged"], notes["closed"]) == (cf.ACK_NOTE, cf.CLOSE_NOTE)
    assignment = Assignment.objects.get(pk=flow.assignment.pk)
    assert assignment.note == cf.ASSIGN_NOTE and assignment.draft_answers == cf.DRAFT | cf.ANSWERS
    raised = AlertEvent.objects.get(alert=flow.alert, action="raised")
    assert raised.detail["rule"] == cf.CRITICAL_CODE
    # The resume query (raw SQL) and the history (ORM) both decrypt.
    after = im_selectors.messages_after(conversation_id=flow.conversation_id, after_seq=0)["items"]
    texts = [m["body"].get("text") for m in after if m["kind"] == "text"]
    assert texts == [cf.API_TEXT, cf.BATCH_TEXT]
    history = p.get(f"/im/conversations/{flow.conversation_id}/messages").json()["items"]
    assert [m["body"]["text"] for m in history if m["kind"] == "text"] == [cf.API_TEXT, cf.BATCH_TEXT]
    card = next(m for m in history if m["kind"] == "card")
    assert card["body"]["card_type"] == "scale_assignment"


@pytest.mark.django_db
def test_every_clinical_column_is_ciphertext_at_rest_and_plaintext_through_the_api() -> None:
    flow = cf.run()
    _assert_encrypted(flow)
    _assert_readable(flow)


@pytest.mark.django_db
def test_a_ciphertext_moved_to_another_column_does_not_decrypt() -> None:
    flow = cf.run()
    review = ResultReview.objects.get(result=flow.result)
    ack = AlertEvent.objects.get(alert=flow.alert, action="acknowledged")
    stolen = _raw("psych_resultreview", "note", "id", review.pk)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE psych_alertevent SET note = %s WHERE id = %s", [stolen, ack.pk])
    with pytest.raises(crypto.DecryptionError, match=r"psych\.alertevent\.note.*authentication failed"):
        AlertEvent.objects.get(pk=ack.pk)
    # The same for a message body moved into a note, and for plaintext left in a column.
    body = _raw("im_message", "body", "client_msg_id", "rest-1")  # type: ignore[arg-type]
    with connection.cursor() as cursor:
        cursor.execute("UPDATE psych_alertevent SET note = %s WHERE id = %s", [body, ack.pk])
    with pytest.raises(crypto.DecryptionError, match="authentication failed"):
        AlertEvent.objects.get(pk=ack.pk)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE psych_alertevent SET note = %s WHERE id = %s", [cf.ACK_NOTE, ack.pk])
    with pytest.raises(crypto.DecryptionError, match="not v1 ciphertext"):
        AlertEvent.objects.get(pk=ack.pk)
    # The column it came from still opens: nothing else was touched.
    assert ResultReview.objects.get(pk=review.pk).note == cf.REVIEW_NOTE


@pytest.mark.django_db
def test_encrypted_columns_refuse_sql_lookups() -> None:
    for build in (
        lambda: Message.objects.filter(body__text="x"),
        lambda: Message.objects.filter(body__contains="x"),
        lambda: ResultReview.objects.filter(note__icontains="抑郁"),
        lambda: AlertEvent.objects.filter(note="x"),
        lambda: Result.objects.filter(critical__contains=["suicide_risk"]),
    ):
        with pytest.raises(FieldError, match="encrypted at rest"):
            build()
    assert not Message.objects.filter(body__isnull=True).exists()  # isnull stays (no value is compared)


@pytest.mark.django_db
def test_update_and_bulk_create_encrypt_too() -> None:
    flow = cf.run()
    ack = AlertEvent.objects.get(alert=flow.alert, action="acknowledged")
    AlertEvent.objects.filter(pk=ack.pk).update(note="哨兵庚：更正记录")
    raw = _raw("psych_alertevent", "note", "id", ack.pk)
    assert raw.startswith("v1:") and "哨兵庚" not in raw
    assert AlertEvent.objects.get(pk=ack.pk).note == "哨兵庚：更正记录"
    [made] = Message.objects.bulk_create(
        [Message(conversation_id=flow.conversation_id, seq=99, kind="text", body={"text": "哨兵辛"}, client_msg_id="b")]
    )
    raw = _raw("im_message", "body", "id", made.pk)
    assert raw.startswith("v1:") and "哨兵辛" not in raw
    assert Message.objects.get(pk=made.pk).body == {"text": "哨兵辛"}


LATEST = [("im", "0002_message_body_encrypted"), ("psych", "0004_clinical_text_encrypted")]
BEFORE = [("im", "0001_initial"), ("psych", "0002_result_append_only")]


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_the_migrations_convert_existing_rows_in_place_both_ways() -> None:
    flow = cf.run()
    review = ResultReview.objects.values_list("pk", flat=True).get(result=flow.result)
    notified = AlertEvent.objects.filter(alert=flow.alert, action="notified").values_list("pk", flat=True).get()
    try:
        _migrate(BEFORE)
        # Backwards: every column is plaintext again (JSON where it was JSON).
        assert _raw("psych_resultreview", "note", "id", review) == cf.REVIEW_NOTE
        body = _raw("im_message", "body", "client_msg_id", "rest-1")  # type: ignore[arg-type]
        assert cf.API_TEXT in (body if isinstance(body, str) else str(body))
        answers = _raw("psych_result", "answers", "id", flow.result.pk)
        assert '"9"' in (answers if isinstance(answers, str) else str(answers))
        # Rows written before the encryption existed (plain, as the old code wrote them).
        with connection.cursor() as cursor:
            cursor.execute("UPDATE psych_alertevent SET note = %s WHERE id = %s", ["旧数据：明文备注", notified])
        _migrate(LATEST)
    finally:
        _migrate(LATEST)
    _assert_encrypted(flow)
    _assert_readable(flow)
    raw = _raw("psych_alertevent", "note", "id", notified)
    assert raw.startswith("v1:") and "旧数据" not in raw
    assert AlertEvent.objects.get(pk=notified).note == "旧数据：明文备注"
    # The append-only triggers are back after the conversion.
    with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE psych_result SET raw_score = 0 WHERE id = %s", [flow.result.pk])
    assert Result.objects.get(pk=flow.result.pk).raw_score == flow.result.raw_score


@pytest.mark.django_db
def test_care_relationship_notes_are_ciphertext_at_rest() -> None:
    from apps.accounts.roles import Role
    from apps.care_team import services as care
    from apps.care_team.api import relationship_out
    from tests.conftest import make_patient, make_staff
    from tests.psych.conftest import add_patient

    doctor = make_staff(Role.DOCTOR, "atrestcare")
    patient = add_patient(make_patient("13912340931"), "赵敏")
    rel, _ = care.relationship_open(
        staff=doctor.user, patient=patient, reason="duty", note="术后焦虑，家属陪护", created_by=doctor.user
    )
    care.relationship_end(actor=doctor.user, relationship_id=rel.pk, note="已转心理科随访")
    for column, text in (("note", "术后焦虑"), ("end_note", "心理科")):
        raw = _raw("care_team_carerelationship", column, "id", rel.pk)
        assert raw.startswith("v1:") and text not in raw, (column, raw)
    rel.refresh_from_db()
    out = relationship_out(rel)
    assert (out["note"], out["end_note"]) == ("术后焦虑，家属陪护", "已转心理科随访")
