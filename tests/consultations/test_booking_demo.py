"""The demo seeder: departments, 李医生 listed and qualified with slots, 张伟 able to
book at once (a hospital record on file), one visit in 李医生's queue; idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.models import Patient, User
from apps.consultations import services
from apps.consultations.models import Department, DoctorProfile, Slot, Visit
from apps.consultations.selectors import qualified
from apps.todos.registry import todos_for


@pytest.mark.django_db
def test_seed_demo_adds_consultations_once_and_zhang_wei_can_book() -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "问诊" in out.getvalue()
    assert set(Department.objects.values_list("name", flat=True)) == {"心血管内科", "内分泌科", "呼吸内科", "儿科"}
    doctor = User.objects.get(username="doctor")
    profile = DoctorProfile.objects.get(user=doctor)
    assert qualified(profile) and profile.price_text_fen > 0
    slots = Slot.objects.filter(doctor=profile).count()
    assert slots >= 7 * 2
    assert Visit.objects.filter(doctor=profile, status=Visit.Status.WAITING).count() == 1
    assert "consult.to_accept" in [t.kind for t in todos_for(doctor)[0]]
    call_command("seed_demo", stdout=StringIO())
    assert Slot.objects.filter(doctor=profile).count() == slots and Visit.objects.count() == 1
    me = Patient.objects.get(name="张伟")
    slot = Slot.objects.filter(doctor=profile, kind="text").order_by("-starts_at").first()
    assert slot is not None
    visit = services.visit_book(
        account=me.owner,
        data=services.BookingInput(
            patient_id=me.pk, kind="text", chief_complaint="高血压复诊", doctor_id=profile.pk, slot_id=slot.pk
        ),
    )
    assert visit.status == Visit.Status.PENDING_PAYMENT and visit.order_no
