from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "apps.media"
    label = "media"
    verbose_name = "音视频"

    def ready(self) -> None:
        from apps.accounts.signals import consent_changed, sessions_revoked
        from apps.im.signals import member_removed

        from . import realtime  # noqa: F401  (registers the media.* socket frames)
        from .control import on_member_removed, on_sessions_revoked
        from .recording import on_consent_changed

        # A withdrawn recording consent stops the patient's running recordings at once.
        consent_changed.connect(on_consent_changed, dispatch_uid="media.recording_consent")
        # A login session that ends (logout...) ends its media: the nodes refuse its grants
        # and close what it opened.
        sessions_revoked.connect(on_sessions_revoked, dispatch_uid="media.sessions_revoked")
        # A member removed from a conversation loses its video room at once.
        member_removed.connect(on_member_removed, dispatch_uid="media.member_removed")
