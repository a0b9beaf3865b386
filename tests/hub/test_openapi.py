"""Every 2xx response of the API declares a typed body, every error response the
ErrorOut schema with its stable codes, every authenticated route its 401 (issue 9).

Walks ``/api/v1/openapi.json``: each 2xx response of each operation must have
a JSON content schema that is a ``$ref`` to a component with declared
properties (or an array of such refs). Untyped bodies (``{}``, a bare
``object``, ``additionalProperties: true``) fail. A 204 without a body is
fine, and so is a route that declares a non-JSON body (a file, printable
HTML) by its content type."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

NON_JSON = {"text/html", "application/octet-stream"}


def _component(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def _typed(spec: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """None when the schema is a typed component; otherwise why not."""
    if schema.get("type") == "array":
        return _typed(spec, schema.get("items") or {})
    ref = schema.get("$ref")
    if not ref:
        return f"not a $ref: {schema}"
    comp = _component(spec, ref)
    if comp.get("additionalProperties") not in (None, False):
        return f"{ref} allows additional properties"
    if not comp.get("properties"):
        return f"{ref} declares no properties"
    return None


def untyped_responses(spec: dict[str, Any]) -> list[str]:
    problems = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, response in op.get("responses", {}).items():
                if not str(status).startswith("2"):
                    continue
                content = response.get("content") or {}
                where = f"{method.upper()} {path} {status}"
                if not content:
                    if str(status) != "204":
                        problems.append(f"{where}: no body declared")
                    continue
                for media, body in content.items():
                    if media in NON_JSON:
                        continue
                    why = _typed(spec, body.get("schema") or {})
                    if why:
                        problems.append(f"{where}: {why}")
    return problems


@pytest.mark.django_db
def test_every_2xx_response_has_a_typed_schema() -> None:
    spec = Client().get("/api/v1/openapi.json").json()
    problems = untyped_responses(spec)
    assert not problems, f"{len(problems)} untyped 2xx responses:\n" + "\n".join(problems)


# --- error responses (issue 9): ErrorOut with the stable codes per status -------------------------

ERROR_REF = "#/components/schemas/ErrorOut"


def error_problems(spec: dict[str, Any]) -> list[str]:
    from hub.errors import declared_codes

    known = declared_codes()
    problems = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            responses = op.get("responses", {})
            if op.get("security") and "401" not in responses:
                problems.append(f"{where}: requires auth but declares no 401")
            for status, response in responses.items():
                if not str(status).startswith(("4", "5")):
                    continue
                schema = ((response.get("content") or {}).get("application/json") or {}).get("schema") or {}
                if schema.get("$ref") != ERROR_REF:
                    problems.append(f"{where} {status}: not the ErrorOut schema: {schema}")
                    continue
                codes = schema.get("x-error-codes") or []
                if not codes:
                    problems.append(f"{where} {status}: lists no error codes")
                for code in codes:
                    if code not in known:
                        problems.append(f"{where} {status}: {code} is in no code table")
                    elif known[code].status != int(status):
                        problems.append(f"{where} {status}: {code} answers {known[code].status}")
    return problems


@pytest.mark.django_db
def test_every_error_response_is_error_out_with_its_codes() -> None:
    spec = Client().get("/api/v1/openapi.json").json()
    assert spec["components"]["schemas"]["ErrorOut"]["required"] == ["code", "message", "detail"]
    problems = error_problems(spec)
    assert not problems, f"{len(problems)} error responses:\n" + "\n".join(problems)
    # The walk bites: an authenticated route's 401 and a psych route's own codes are listed.
    op = spec["paths"]["/api/v1/psych/assignments"]["post"]["responses"]
    assert op["401"]["content"]["application/json"]["schema"]["x-error-codes"] == ["auth.unauthenticated"]
    assert "psych.scale_unknown" in op["422"]["content"]["application/json"]["schema"]["x-error-codes"]


def test_the_walk_fails_on_an_untyped_4xx_and_a_missing_401() -> None:
    spec = {
        "paths": {
            "/x": {
                "get": {"security": [{"BearerAuth": []}], "responses": {"200": {}, "404": {"description": "NF"}}},
            }
        }
    }
    problems = error_problems(spec)
    assert any("declares no 401" in p for p in problems)
    assert any("404: not the ErrorOut schema" in p for p in problems)


def test_schema_names_are_unique_across_apps() -> None:
    """Two Schema classes with one name overwrite each other in the OpenAPI components
    (the im read receipt and the commerce e-receipt once did): every name is unique."""
    from collections import defaultdict

    from ninja import Schema

    import hub.api  # noqa: F401  (imports every app's schemas)

    seen: dict[str, set[str]] = defaultdict(set)
    todo = list(Schema.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(("apps.", "hub.", "recordings.")):
            seen[cls.__name__].add(f"{cls.__module__}.{cls.__qualname__}")
    assert not {name: where for name, where in seen.items() if len(where) > 1}
