from django.urls import path

from .views import recording_replay_file

# Mounted under /media/ (hub.urls), beside the media endpoints.
urlpatterns = [
    path("recordings/<uuid:public_id>.mp4", recording_replay_file, name="recording-replay-file"),
]
