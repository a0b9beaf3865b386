from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path

from .api import api
from .health import healthz, readyz


def home(request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect("/h5/")


urlpatterns = [
    path("", home),
    path("api/v1/", api.urls),
    path("healthz", healthz),
    path("readyz", readyz),
    path("media/", include("recordings.urls")),
    path("media/", include("apps.media.urls")),
    # The sandbox payment gateway (empty in production): apps/commerce/payments/urls.py.
    path("sandbox/pay/", include("apps.commerce.payments.urls")),
]
