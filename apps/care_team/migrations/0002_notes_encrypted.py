"""Care-relationship notes encrypted at rest (ADR 0038): ``note`` and ``end_note``
become ``text`` holding ``v1:`` ciphertext and the existing rows are encrypted in
place. Reversible: backwards, the rows are decrypted before the columns narrow again."""

from django.db import migrations

import hub.fields


def encrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    model = apps.get_model("care_team", "CareRelationship")
    for name in ("note", "end_note"):
        hub.fields.convert_column(schema_editor, model, name, encrypt=True)


def decrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    model = apps.get_model("care_team", "CareRelationship")
    for name in ("note", "end_note"):
        hub.fields.convert_column(schema_editor, model, name, encrypt=False)


class Migration(migrations.Migration):
    dependencies = [("care_team", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="carerelationship", name="note", field=hub.fields.EncryptedTextField(blank=True)
        ),
        migrations.AlterField(
            model_name="carerelationship", name="end_note", field=hub.fields.EncryptedTextField(blank=True)
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
