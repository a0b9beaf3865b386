"""URLs of the sandbox gateway; ``hub/urls.py`` mounts them under ``/sandbox/pay/``:
``path("sandbox/pay/", include("apps.commerce.payments.urls"))``. Empty in production."""

from __future__ import annotations

from django.conf import settings
from django.urls import URLPattern, path, re_path

from . import views

urlpatterns: list[URLPattern] = (
    []
    if settings.PRODUCTION
    else [
        re_path(r"^v3/(?P<rest>.*)$", views.v3),
        path("trades/<str:prepay_id>", views.trade),
        path("trades/<str:prepay_id>/pay", views.pay),
        path("trades/<str:prepay_id>/cancel", views.cancel),
        path("trades/<str:prepay_id>/controls", views.controls),
        path("trades/<str:prepay_id>/callbacks", views.callbacks),
        path("callbacks/flush", views.flush),
        path("faults", views.faults),
    ]
)
