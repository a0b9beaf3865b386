from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "apps.media"
    label = "media"
    verbose_name = "音视频"

    def ready(self) -> None:
        from apps.accounts.signals import consent_changed

        from . import realtime  # noqa: F401  (registers the media.* socket frames)
        from .recording import on_consent_changed

        # A withdrawn recording consent stops the patient's running recordings at once.
        consent_changed.connect(on_consent_changed, dispatch_uid="media.recording_consent")
