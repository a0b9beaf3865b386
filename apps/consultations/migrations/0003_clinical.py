from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("consultations", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="visitrecord",
            name="signature_algorithm",
            field=models.CharField(blank=True, max_length=32),
        ),
    ]
