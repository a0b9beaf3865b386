"""Message bodies encrypted at rest (ADR 0038): the column becomes ``text`` holding
``v1:`` ciphertext (context ``im.message.body``) and the existing rows are encrypted
in place. Reversible: backwards, the rows are decrypted before the column is JSON again."""

from django.db import migrations

import hub.fields


def encrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    hub.fields.convert_column(schema_editor, apps.get_model("im", "Message"), "body", encrypt=True)


def decrypt_rows(apps, schema_editor):  # type: ignore[no-untyped-def]
    hub.fields.convert_column(schema_editor, apps.get_model("im", "Message"), "body", encrypt=False)


class Migration(migrations.Migration):
    dependencies = [("im", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="body",
            field=hub.fields.EncryptedJSONField(default=dict),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
