"""Every action the table does not list is refused with nothing written."""

from __future__ import annotations

import pytest

from apps.core import lifecycle
from apps.core.models import TransitionEvent
from apps.pharmacy.models import Prescription
from apps.pharmacy.states import PRESCRIPTION_TRANSITIONS

from .conftest import PIN, Rx
from .test_flow import create, sign_and_submit

ACTIONS = sorted({a for _, a in PRESCRIPTION_TRANSITIONS})


@pytest.mark.django_db
def test_every_unlisted_action_is_refused_and_writes_nothing(rx: Rx) -> None:
    pid = create(rx)
    p = Prescription.objects.get(pk=pid)
    for status in Prescription.Status.values:
        Prescription.objects.filter(pk=pid).update(status=status)
        for action in ACTIONS:
            if (status, action) in PRESCRIPTION_TRANSITIONS:
                continue
            before = TransitionEvent.objects.count()
            with pytest.raises(lifecycle.TransitionRefused) as exc:
                lifecycle.transition(
                    p, action, table=PRESCRIPTION_TRANSITIONS, actor=rx.doctor.user, code="pharmacy.transition_refused"
                )
            assert exc.value.code == "pharmacy.transition_refused" and exc.value.status == 409
            assert Prescription.objects.get(pk=pid).status == status
            assert TransitionEvent.objects.count() == before


@pytest.mark.django_db
def test_refusals_through_the_api(rx: Rx) -> None:
    doc, pharm = rx.doctor.api(), rx.pharmacist.api()
    pid = create(rx)
    r = doc.post(f"/pharmacy/prescriptions/{pid}/submit")  # not signed yet
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.transition_refused"
    assert r.json()["detail"] == {"status": "draft", "action": "submit"}
    sign_and_submit(rx, pid)
    assert doc.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN}).status_code == 409
    assert doc.post(f"/pharmacy/prescriptions/{pid}/revise").status_code == 409  # in review: reject first
    assert pharm.post(f"/pharmacy/prescriptions/{pid}/approve", {}).status_code == 200
    assert pharm.post(f"/pharmacy/prescriptions/{pid}/approve", {}).status_code == 409
    assert pharm.post(f"/pharmacy/prescriptions/{pid}/reject", {"reason": "晚了"}).status_code == 409
    cancelled = doc.post(f"/pharmacy/prescriptions/{pid}/cancel", {"reason": "患者改为线下取药"}).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "患者改为线下取药"
    event = TransitionEvent.objects.get(object_id=str(pid), action="cancel")
    assert event.reason == "" and "线下" not in Prescription.objects.get(pk=pid).cancel_reason_enc
    assert doc.post(f"/pharmacy/prescriptions/{pid}/revise").status_code == 409
    assert Prescription.objects.get(pk=pid).status == "cancelled"
