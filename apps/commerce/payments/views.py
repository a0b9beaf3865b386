"""The sandbox gateway over HTTP (mounted under ``/sandbox/pay/`` by ``hub/urls.py``).

- ``/sandbox/pay/v3/...``: WeChat Pay API v3 as the adapter calls it (merchant-signed
  requests, platform-signed answers);
- ``/sandbox/pay/trades/<prepay_id>`` (GET) and ``.../pay``, ``.../cancel``, ``.../controls``
  (POST JSON), ``.../callbacks`` (GET): the pay sheet and its test panel;
- ``/sandbox/pay/callbacks/flush`` (POST ``{"force": true, "parallel": false}``) and
  ``/sandbox/pay/faults`` (POST ``{"next": ["error_500", ...]}``): drills.

The prepay id (``wx`` + 32 hex) is the only handle on a trade, as in the real flow where
the client holds it. None of this exists in production (``urls.py`` mounts nothing and
the gateway refuses to be built)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from hub.errors import renders_errors

from .errors import PaymentsCode, PaymentsError
from .sandbox import gateway


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise PaymentsError(PaymentsCode.BAD_REQUEST, field="body") from exc
    if not isinstance(data, dict):
        raise PaymentsError(PaymentsCode.BAD_REQUEST, field="body")
    return data


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@renders_errors
def v3(request: HttpRequest, rest: str) -> HttpResponse:
    full = request.get_full_path()
    mount = full[: full.index("/v3/")] if "/v3/" in full else ""
    route = full[len(mount) :]
    answer = gateway().handle_v3(
        request.method or "GET",
        full,
        route,
        {k: v for k, v in request.headers.items()},
        request.body,
        base_url=request.build_absolute_uri(mount or "/").rstrip("/"),
    )
    response = HttpResponse(answer.body, status=answer.status)
    for key, value in answer.headers.items():
        response[key] = value
    return _no_store(response)


@csrf_exempt
@require_GET
@renders_errors
def trade(request: HttpRequest, prepay_id: str) -> HttpResponse:
    return _no_store(JsonResponse(gateway().sheet(prepay_id)))


@csrf_exempt
@require_POST
@renders_errors
def pay(request: HttpRequest, prepay_id: str) -> HttpResponse:
    return _no_store(JsonResponse(gateway().pay(prepay_id, _json_body(request))))


@csrf_exempt
@require_POST
@renders_errors
def cancel(request: HttpRequest, prepay_id: str) -> HttpResponse:
    return _no_store(JsonResponse(gateway().cancel(prepay_id)))


@csrf_exempt
@require_POST
@renders_errors
def controls(request: HttpRequest, prepay_id: str) -> HttpResponse:
    return _no_store(JsonResponse({"controls": gateway().set_controls(prepay_id, _json_body(request))}))


@csrf_exempt
@require_GET
@renders_errors
def callbacks(request: HttpRequest, prepay_id: str) -> HttpResponse:
    gw = gateway()
    gw.sheet(prepay_id)  # 404 for an unknown trade
    return _no_store(JsonResponse({"callbacks": gw.callbacks_of(prepay_id)}))


@csrf_exempt
@require_POST
@renders_errors
def flush(request: HttpRequest) -> HttpResponse:
    body = _json_body(request)
    done = gateway().deliver_due(force=bool(body.get("force", True)), parallel=bool(body.get("parallel", False)))
    return _no_store(JsonResponse({"callbacks": done}))


@csrf_exempt
@require_POST
@renders_errors
def faults(request: HttpRequest) -> HttpResponse:
    return _no_store(JsonResponse({"next": gateway().set_faults(_json_body(request).get("next", []))}))
