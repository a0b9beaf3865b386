from django.apps import AppConfig


class RecordingsConfig(AppConfig):
    name = "recordings"
    verbose_name = "音视频录制"
    default_auto_field = "django.db.models.BigAutoField"
