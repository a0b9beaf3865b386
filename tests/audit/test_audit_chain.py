from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record, audit_verify_chain

pytestmark = pytest.mark.django_db


def _rows(n: int = 5) -> list[AuditEvent]:
    return [audit_record(action="test.event", actor_username=f"u{i}", detail={"n": i}) for i in range(n)]


def test_an_intact_chain_verifies() -> None:
    _rows()
    result = audit_verify_chain()
    assert result.ok and result.checked == 5 and result.first_bad_id is None
    call_command("audit_verify")


def _tamper(sql: str, params: list) -> None:
    # An attacker with owner rights disables the trigger, edits, re-enables.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")


def test_an_edited_row_is_named_by_the_verifier() -> None:
    rows = _rows()
    _tamper("UPDATE audit_auditevent SET actor_username = 'someone-else' WHERE id = %s", [rows[2].id])
    result = audit_verify_chain()
    assert not result.ok and result.first_bad_id == rows[2].id
    with pytest.raises(CommandError, match=f"row {rows[2].id}"):
        call_command("audit_verify")


def test_a_deleted_row_breaks_the_link_of_its_successor() -> None:
    rows = _rows()
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [rows[1].id])
    result = audit_verify_chain()
    assert not result.ok and result.first_bad_id == rows[2].id


def test_a_deleted_tail_is_detected_against_the_head() -> None:
    rows = _rows()
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [rows[-1].id])
    assert not audit_verify_chain().ok


def test_a_rehashed_row_without_the_key_is_detected() -> None:
    import hashlib

    rows = _rows()
    fake = hashlib.sha256(b"forged").hexdigest()
    _tamper("UPDATE audit_auditevent SET result = 'denied', hash = %s WHERE id = %s", [fake, rows[3].id])
    assert audit_verify_chain().first_bad_id == rows[3].id


@pytest.mark.parametrize("sql", ["UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"])
def test_postgres_refuses_update_and_delete(sql: str) -> None:
    _rows(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.count() == 2
    assert audit_verify_chain().ok


def test_the_orm_cannot_delete_audit_rows_either() -> None:
    _rows(1)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


def test_audit_detail_carries_no_secrets(api, nurse) -> None:
    from tests.conftest import STRONG

    api.post("/auth/staff/login", {"username": "nurse1", "password": STRONG})
    api.post("/auth/staff/login", {"username": "nurse1", "password": "Wrong-Pass-1"})
    dump = repr(list(AuditEvent.objects.values()))
    assert STRONG not in dump and "Wrong-Pass-1" not in dump
    from apps.accounts.models import AuthToken

    for token in AuthToken.objects.all():
        assert token.key_hash not in dump


# --- issue 11, finding 8: the head is anchored -------------------------------------------


def _tamper_head(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only")
        cursor.execute("ALTER TABLE audit_audithead DISABLE TRIGGER audit_head_guard")
        cursor.execute(sql[0], params[0])
        cursor.execute(sql[1], params[1])
        cursor.execute("ALTER TABLE audit_audithead ENABLE TRIGGER audit_head_guard")
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only")


def test_a_cut_tail_with_a_rewritten_head_is_detected() -> None:
    """The probe: drop the triggers, delete the last rows, point the head at the new
    last row. Without the key the head's MAC cannot follow."""
    rows = _rows(25)
    keep = rows[4]
    _tamper_head(
        [
            "DELETE FROM audit_auditevent WHERE id > %s",
            "UPDATE audit_audithead SET last_id = %s, last_hash = %s WHERE id = 1",
        ],
        [[keep.id], [keep.id, keep.hash]],
    )
    result = audit_verify_chain()
    assert (result.ok, result.reason, result.first_bad_id) == (False, "head_mac", keep.id)
    with pytest.raises(CommandError):
        call_command("audit_verify")


@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM audit_audithead", "UPDATE audit_audithead SET last_id = last_id - 1"],
)
def test_postgres_refuses_deleting_or_rewinding_the_head(sql: str) -> None:
    _rows(3)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert audit_verify_chain().ok


def test_a_deleted_head_is_detected() -> None:
    _rows(3)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_audithead DISABLE TRIGGER audit_head_guard")
        cursor.execute("DELETE FROM audit_audithead")
        cursor.execute("ALTER TABLE audit_audithead ENABLE TRIGGER audit_head_guard")
    result = audit_verify_chain()
    assert (result.ok, result.reason) == (False, "head")
