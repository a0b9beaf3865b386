"""The hub's URLs plus the sandbox gateway, mounted as hub/urls.py will mount it."""

from django.urls import include, path

from hub.urls import urlpatterns as hub_urlpatterns

urlpatterns = [*hub_urlpatterns, path("sandbox/pay/", include("apps.commerce.payments.urls"))]
