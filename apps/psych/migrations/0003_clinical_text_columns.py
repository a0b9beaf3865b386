"""Answers, notes and flags encrypted at rest (ADR 0038), step 1 of 2: each column
becomes an encrypted field (``text``). Step 2 (0004) encrypts the existing rows.

Two migrations, two transactions: on PostgreSQL an ALTER TABLE after UPDATEs of rows
the same transaction rewrote fails ("pending trigger events"), so backwards the rows
are decrypted and committed (0004) before the columns turn back into JSON here.

Results and reviews are append-only (0002): their triggers are dropped here and
created again at the end of 0004, on PostgreSQL and SQLite (where altering a column
rebuilds the table and would drop them anyway)."""

import importlib

from django.db import migrations

import hub.fields

append_only = importlib.import_module("apps.psych.migrations.0002_result_append_only")


class Migration(migrations.Migration):
    dependencies = [("psych", "0002_result_append_only")]

    operations = [
        # Drop the append-only triggers (backwards: create them again).
        migrations.RunPython(append_only.backward, append_only.forward),
        migrations.AlterField(model_name="assignment", name="note", field=hub.fields.EncryptedTextField(blank=True)),
        migrations.AlterField(
            model_name="assignment", name="draft_answers", field=hub.fields.EncryptedJSONField(default=dict)
        ),
        migrations.AlterField(model_name="result", name="answers", field=hub.fields.EncryptedJSONField()),
        migrations.AlterField(model_name="result", name="flags", field=hub.fields.EncryptedJSONField(default=list)),
        migrations.AlterField(model_name="result", name="critical", field=hub.fields.EncryptedJSONField(default=list)),
        migrations.AlterField(model_name="resultreview", name="note", field=hub.fields.EncryptedTextField()),
        migrations.AlterField(model_name="alertevent", name="note", field=hub.fields.EncryptedTextField(blank=True)),
        migrations.AlterField(
            model_name="alertevent", name="detail", field=hub.fields.EncryptedJSONField(default=dict)
        ),
    ]
