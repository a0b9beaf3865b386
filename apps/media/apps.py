from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "apps.media"
    label = "media"
    verbose_name = "音视频"

    def ready(self) -> None:
        from . import realtime  # noqa: F401  (registers the media.* socket frames)
