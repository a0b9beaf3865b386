from django.urls import path

from .whip import media_session, whep, whip

urlpatterns = [
    path("whip/<str:room_id>", whip, name="media-whip"),
    path("whep/<str:room_id>", whep, name="media-whep"),
    path("whip/<str:room_id>/<str:session>", media_session),
    path("whep/<str:room_id>/<str:session>", media_session),
]
