"""schemathesis over the whole OpenAPI (issue 11): no 5xx, no undocumented status, bodies as documented.

The schema comes from the NinjaAPI object (``hub.api.api``), so the run does
not depend on ``API_DOCS`` (production serves no schema). Every operation gets
positive and negative data, sent through Django's WSGI handler in this process
(the real middleware, ninja and the error handlers) inside the test's
transaction, three times: as a patient (SMS code login through the API), as a
doctor (password + TOTP through the API) and without a token. Then each
operation whose path names objects the personas own (their conversation and
its first message, the 就诊人, the care relationship, the scale assignment, the
video room) runs again with those ids, so answers other than 404 are checked
against their schemas too. Each case is undone after its answer (a savepoint),
so a logout or a deletion does not change what the next case meets.

Checks: ``not_a_server_error``, ``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``.

Deterministic: one fixed seed (hypothesis takes it over ``derandomize``, also
on), no example database, no deadline (tests assert no timings); the too-slow
and filter-too-much health checks are off because building one example of the
larger bodies can exceed hypothesis' budget on a loaded machine (generation
speed, not the API). Failures are collected over the whole run
and reported in one assertion: operation, persona, status, what failed, the
body and the request as a curl line.

Bounded: ~75 operations x 3 personas x (8 positive + 4 negative examples),
plus the pass with known ids: about 2,400 requests, 30-70 s on the shared 2-core machine.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.models import SandboxOutbox
from apps.accounts.services import consent_set, token_issue
from apps.care_team.services import take_into_care
from apps.im.services import conversation_for_pair, message_send
from apps.psych.services import assignments_create
from hub import crypto
from tests.conftest import STRONG, Api, Persona, make_patient
from tests.psych.conftest import add_patient, make_doctor

pytestmark = pytest.mark.django_db

SEED = 20261201
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 4}
KNOWN_EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PATIENT_PHONE = "13900000077"
# Not run with real ids: no media node runs in this test, and a start in a real room waits
# 15 s for one, then answers the documented 503. Starting without a publisher, with a node,
# is tests/recordings/test_recording_no_publisher.py.
NOT_WITH_KNOWN_IDS = {"POST /api/v1/media/rooms/{room_id}/recording/start"}


@dataclass
class Who:
    """A persona the run acts as, with the token its login gave."""

    name: str
    persona: Persona | None = None
    token: str = ""
    known: dict[str, Any] = field(default_factory=dict)  # path parameter -> an id this persona may use

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class Run:
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    answered_2xx: set[str] = field(default_factory=set)

    def fail(self, who: str, operation: str, kind: str, text: str) -> None:
        # One report per operation, persona and kind of failure: the first request that showed it.
        self.failures.setdefault((operation, who, kind), text)

    def report(self) -> str:
        return "\n".join(f"{op} as {who} ({kind}): {text}" for (op, who, kind), text in sorted(self.failures.items()))


@contextmanager
def keeping_the_connection() -> Iterator[None]:
    """Requests through the WSGI handler keep the test's connection, as django.test.Client's
    do (closing old connections at request start and end would end the test's transaction).
    Nothing inside may use django.test.Client: it connects those handlers again."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def load_schema(raw: dict[str, Any]) -> Any:
    # Authorization is the persona's, never a generated one.
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_dict(raw, config=config)
    schema.app = WSGIHandler()
    return schema


def exercise(operation: Any, who: Who, run: Run, *, mode: GenerationMode, examples: int, **fixed: Any) -> None:
    """``examples`` generated cases of ``operation`` as ``who``; every failure goes into ``run``."""

    @seed(SEED)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        # Building one example of the larger bodies (staff creation, the audit filters) can
        # exceed hypothesis' budget on a loaded 2-core machine: generation speed, not the API.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def one(case: Any) -> None:
        headers = who.headers()
        run.sent[who.name] += 1
        # Each case starts from the same data: what it wrote (a logout, a deleted 就诊人) is
        # undone, and so is a transaction a refused statement aborted (in production each
        # request has its own; here they all share the test's).
        sid = transaction.savepoint()
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # the WSGI transport re-raises what the app raised
            run.fail(who.name, operation.label, "exception", f"{exc!r}\n    {case.as_curl_command(headers=headers)}")
            return
        finally:
            transaction.savepoint_rollback(sid)
            transaction.savepoint_commit(sid)  # release it: thousands of open savepoints exhaust the lock table
        if 200 <= response.status_code < 300:
            run.answered_2xx.add(operation.label)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                run.fail(
                    who.name,
                    operation.label,
                    type(failure).__name__,
                    f"[{response.status_code}] {failure.title}: {failure.message}\n"
                    f"    body: {response.text[:300]}\n"
                    f"    {case.as_curl_command(headers=headers)}",
                )

    try:
        one()
    except Unsatisfiable:
        # No negative data exists for an operation without parameters or body.
        assert mode is GenerationMode.NEGATIVE, operation.label


def run_all(schema: Any, people: list[Who]) -> Run:
    run = Run()
    operations = [result.ok() for result in schema.get_all_operations()]
    with keeping_the_connection():
        for who in people:
            for operation in operations:
                for mode, examples in EXAMPLES.items():
                    exercise(operation, who, run, mode=mode, examples=examples)
        for who in people:
            for operation in operations:
                names = {p.name for p in operation.path_parameters}
                if names and names <= who.known.keys() and operation.label not in NOT_WITH_KNOWN_IDS:
                    fixed = {name: who.known[name] for name in names}
                    exercise(
                        operation,
                        who,
                        run,
                        mode=GenerationMode.POSITIVE,
                        examples=KNOWN_EXAMPLES,
                        path_parameters=fixed,
                    )
    return run


def doctor_login(doctor: Persona) -> str:
    body = {"username": doctor.user.username, "password": STRONG, "otp": doctor.totp()}
    r = Api().post("/auth/staff/login", body)
    assert r.status_code == 200, r.content
    return str(r.json()["token"])


def patient_login(capture: Callable[..., Any]) -> str:
    api = Api(ip="10.0.0.7")
    with capture(execute=True):  # the code leaves through the outbox after commit
        assert api.post("/auth/sms/send", {"phone": PATIENT_PHONE}).status_code == 200
    sms = SandboxOutbox.objects.filter(recipient_hash=crypto.lookup_hash(PATIENT_PHONE, context="phone")).latest("id")
    r = api.post("/auth/sms/login", {"phone": PATIENT_PHONE, "code": sms.body.split("验证码为")[1][:6]})
    assert r.status_code == 200, r.content
    return str(r.json()["token"])


def test_the_whole_api_answers_as_documented(django_capture_on_commit_callbacks: Any) -> None:
    from hub.api import api

    cache.clear()  # login throttles and send limits of earlier tests
    doctor = make_doctor("stdoc")
    patient = make_patient(PATIENT_PHONE, "测试患者")
    me = add_patient(patient, "测试患者")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    message_send(
        conversation_id=conv.pk, sender=patient.user, kind="text", body={"text": "医生您好"}, client_msg_id="m1"
    )
    relationship, _ = take_into_care(actor=doctor.user, conversation_id=conv.pk, patient_id=me.pk)
    (assignment,) = assignments_create(
        doctor=doctor.user, patient_id=me.pk, scale_codes=["PHQ-9"], due_at=timezone.now() + dt.timedelta(days=7)
    )
    consent_set(user=patient.user, purpose="recording", granted=True)
    shared = {
        "conversation_id": conv.pk,
        "seq": 1,
        "patient_id": me.pk,
        "room_id": f"conv-{conv.pk}",
        "assignment_id": assignment.pk,
        "code": "PHQ-9",
    }

    raw = api.get_openapi_schema(path_prefix="/api/v1/")
    people = [
        Who("patient", patient, patient_login(django_capture_on_commit_callbacks), known=shared),
        Who("doctor", doctor, doctor_login(doctor), known={**shared, "relationship_id": relationship.pk}),
        Who("anonymous"),
    ]
    run = run_all(load_schema(raw), people)

    operations = sum(len(ops) for ops in raw["paths"].values())
    assert all(run.sent[who.name] >= operations * sum(EXAMPLES.values()) // 2 for who in people), run.sent
    # The run reached the code behind the checks, not only refusals: a good share of the
    # operations answered 2xx at least once (their bodies checked against the schema).
    assert len(run.answered_2xx) >= 30, sorted(run.answered_2xx)
    assert not run.failures, f"{len(run.failures)} failures over {dict(run.sent)} requests:\n{run.report()}"


# --- the harness bites ----------------------------------------------------------------------------


def test_the_harness_reports_an_undocumented_status_and_a_body_off_its_schema() -> None:
    """An operation whose 401 is not declared and whose 200 body must carry a field the API
    never sends: both are reported, with the request, in one message."""
    from hub.api import api

    raw = copy.deepcopy(api.get_openapi_schema(path_prefix="/api/v1/"))
    me = raw["paths"]["/api/v1/accounts/me"]["get"]
    del me["responses"][401]
    ref = me["responses"][200]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    out = raw["components"]["schemas"][ref]
    out["properties"]["never_sent"] = {"type": "string"}
    out["required"] = [*out.get("required", []), "never_sent"]
    raw["paths"] = {"/api/v1/accounts/me": {"get": me}}

    user = make_patient("13900000078")
    run = run_all(load_schema(raw), [Who("anonymous"), Who("patient", user, token_issue(user=user.user).raw)])
    assert set(run.failures) == {
        ("GET /api/v1/accounts/me", "anonymous", "UndefinedStatusCode"),
        ("GET /api/v1/accounts/me", "patient", "JsonSchemaError"),
    }, run.report()
    assert "[401]" in run.failures[("GET /api/v1/accounts/me", "anonymous", "UndefinedStatusCode")]
    assert "curl -X GET" in run.report() and "never_sent" in run.report()
