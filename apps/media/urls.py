from django.urls import path

from .views import pass_grant, redeem
from .whip import media_session, whep, whip

urlpatterns = [
    path("whip/<str:room_id>", whip, name="media-whip"),
    path("whep/<str:room_id>", whep, name="media-whep"),
    path("whip/<str:room_id>/<str:session>", media_session),
    path("whep/<str:room_id>/<str:session>", media_session),
    # the web-view's pass and room session (apps.media.passes)
    path("passes/redeem", redeem, name="media-pass-redeem"),
    path("rooms/<str:room_id>/grant", pass_grant, name="media-pass-grant"),
]
