from django.urls import path

from .views import recording_replay_file
from .whip import media_session, whep, whip

urlpatterns = [
    path("recordings/<uuid:public_id>.mp4", recording_replay_file, name="recording-replay-file"),
    path("whip/<str:room_id>", whip, name="media-whip"),
    path("whep/<str:room_id>", whep, name="media-whep"),
    path("whip/<str:room_id>/<str:session>", media_session),
    path("whep/<str:room_id>/<str:session>", media_session),
]
