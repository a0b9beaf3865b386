"""Answers, notes and flags encrypted at rest (ADR 0038), step 2 of 2: the existing
rows are encrypted in place (context ``psych.<model>.<field>``), then the append-only
triggers dropped in 0003 are created again. Backwards: the triggers are dropped and
the rows decrypted; 0003 then turns the columns back into JSON / varchar."""

import importlib

from django.db import migrations

import hub.fields

append_only = importlib.import_module("apps.psych.migrations.0002_result_append_only")

COLUMNS = [
    ("Assignment", "note"),
    ("Assignment", "draft_answers"),
    ("Result", "answers"),
    ("Result", "flags"),
    ("Result", "critical"),
    ("ResultReview", "note"),
    ("AlertEvent", "note"),
    ("AlertEvent", "detail"),
]


def _convert(apps, schema_editor, *, encrypt):  # type: ignore[no-untyped-def]
    for model, name in COLUMNS:
        hub.fields.convert_column(schema_editor, apps.get_model("psych", model), name, encrypt=encrypt)


def encrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    _convert(apps, schema_editor, encrypt=True)


def decrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    _convert(apps, schema_editor, encrypt=False)


def clear_alert_reasons(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Alert acknowledge/close notes were also copied in plain into the transition
    events' ``reason``; the same note stays (encrypted) in the alert's own log."""
    table = apps.get_model("core", "TransitionEvent")._meta.db_table
    schema_editor.execute(f"UPDATE {table} SET reason = '' WHERE object_type = %s AND reason <> ''", ["psych.alert"])  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [("psych", "0003_clinical_text_columns"), ("core", "0001_initial")]

    operations = [
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.RunPython(clear_alert_reasons, migrations.RunPython.noop),
        # The append-only triggers again (backwards: drop them for the conversion back).
        migrations.RunPython(append_only.forward, append_only.backward),
    ]
