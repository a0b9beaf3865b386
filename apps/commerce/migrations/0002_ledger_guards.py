"""On PostgreSQL the ledger guards itself:

- append-only: UPDATE and DELETE of a ledger entry are refused;
- balanced: a deferred constraint trigger checks at commit, for every order
  whose ledger or money columns changed, that its entries sum to zero and that
  the money entries (payment, refund) equal ``-(paid_fen - refunded_fen)``.
  A transaction that leaves an order unbalanced does not commit."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION commerce_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'commerce_ledgerentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER commerce_ledger_append_only
    BEFORE UPDATE OR DELETE ON commerce_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION commerce_ledger_refuse_change();

CREATE OR REPLACE FUNCTION commerce_ledger_check_order(oid bigint) RETURNS void AS $$
DECLARE
    total bigint;
    money bigint;
    received bigint;
BEGIN
    SELECT COALESCE(SUM(amount_fen), 0),
           COALESCE(SUM(amount_fen) FILTER (WHERE kind IN ('payment', 'refund')), 0)
      INTO total, money FROM commerce_ledgerentry WHERE order_id = oid;
    SELECT paid_fen - refunded_fen INTO received FROM commerce_order WHERE id = oid;
    IF total <> 0 OR -money <> COALESCE(received, 0) THEN
        RAISE EXCEPTION 'commerce ledger of order % unbalanced (sum %, money %, received %)',
            oid, total, -money, received USING ERRCODE = 'check_violation';
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION commerce_ledger_check_entry() RETURNS trigger AS $$
BEGIN
    PERFORM commerce_ledger_check_order(NEW.order_id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER commerce_ledger_balanced
    AFTER INSERT ON commerce_ledgerentry DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION commerce_ledger_check_entry();

CREATE OR REPLACE FUNCTION commerce_order_check_money() RETURNS trigger AS $$
BEGIN
    IF NEW.paid_fen <> OLD.paid_fen OR NEW.refunded_fen <> OLD.refunded_fen THEN
        PERFORM commerce_ledger_check_order(NEW.id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER commerce_order_money_balanced
    AFTER UPDATE ON commerce_order DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION commerce_order_check_money();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS commerce_order_money_balanced ON commerce_order;
DROP TRIGGER IF EXISTS commerce_ledger_balanced ON commerce_ledgerentry;
DROP TRIGGER IF EXISTS commerce_ledger_append_only ON commerce_ledgerentry;
DROP FUNCTION IF EXISTS commerce_order_check_money();
DROP FUNCTION IF EXISTS commerce_ledger_check_entry();
DROP FUNCTION IF EXISTS commerce_ledger_check_order(bigint);
DROP FUNCTION IF EXISTS commerce_ledger_refuse_change();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER commerce_ledger_no_update BEFORE UPDATE ON commerce_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'commerce_ledgerentry is append-only'); END""",
    """CREATE TRIGGER commerce_ledger_no_delete BEFORE DELETE ON commerce_ledgerentry
       BEGIN SELECT RAISE(ABORT, 'commerce_ledgerentry is append-only'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS commerce_ledger_no_update",
    "DROP TRIGGER IF EXISTS commerce_ledger_no_delete",
]


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(BACKWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("commerce", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
