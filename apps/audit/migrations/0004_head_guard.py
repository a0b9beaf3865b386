"""Seal the existing head, and on PostgreSQL refuse deleting the head row or moving
it backwards (a cut tail needs the head rewound); on SQLite the same two rules."""

from django.db import migrations


def seal_head(apps, schema_editor):  # type: ignore[no-untyped-def]
    from apps.audit.services import head_mac

    AuditHead = apps.get_model("audit", "AuditHead")
    for head in AuditHead.objects.all():
        head.mac = head_mac(head.last_id, head.last_hash)
        head.save(update_fields=["mac"])


PG_FORWARD = """
CREATE OR REPLACE FUNCTION audit_head_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'audit_audithead cannot be deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.last_id < OLD.last_id THEN
        RAISE EXCEPTION 'audit_audithead cannot move backwards' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_head_guard
    BEFORE UPDATE OR DELETE ON audit_audithead
    FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS audit_head_guard ON audit_audithead;
DROP FUNCTION IF EXISTS audit_head_guard();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_audithead
       BEGIN SELECT RAISE(ABORT, 'audit_audithead cannot be deleted'); END""",
    """CREATE TRIGGER audit_head_no_rewind BEFORE UPDATE ON audit_audithead
       WHEN NEW.last_id < OLD.last_id
       BEGIN SELECT RAISE(ABORT, 'audit_audithead cannot move backwards'); END""",
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS audit_head_no_delete", "DROP TRIGGER IF EXISTS audit_head_no_rewind"]


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_head_mac")]

    operations = [
        migrations.RunPython(seal_head, migrations.RunPython.noop),
        migrations.RunPython(forward, backward),
    ]
