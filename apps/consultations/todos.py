"""To-dos of consultations (``apps.todos``).

- doctor: paid visits waiting to be accepted (their own and their department's
  queue), accepted visits waiting to be called in;
- patient: a visit booked and not paid yet, a visit called in to join."""

from __future__ import annotations

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from .models import Visit
from .selectors import profile_of


def consultation_todos(user: User) -> list[Todo]:
    out: list[Todo] = []
    if user.role == Role.DOCTOR:
        profile = profile_of(user)
        if profile is None:
            return []
        waiting = Visit.objects.filter(status=Visit.Status.WAITING, doctor=profile).count()
        queue = Visit.objects.filter(
            status=Visit.Status.WAITING, doctor__isnull=True, department_id=profile.department_id
        ).count()
        accepted = Visit.objects.filter(status=Visit.Status.ACCEPTED, doctor=profile).count()
        if waiting:
            out.append(Todo(kind="consult.to_accept", title="待接诊的问诊", count=waiting, route="consult-workbench"))
        if queue:
            out.append(
                Todo(kind="consult.department_queue", title="科室排队待领取", count=queue, route="consult-workbench")
            )
        if accepted:
            out.append(Todo(kind="consult.to_call", title="已接诊待叫号", count=accepted, route="consult-workbench"))
    elif user.role == Role.PATIENT:
        unpaid = Visit.objects.filter(account=user, status=Visit.Status.PENDING_PAYMENT).count()
        live = Visit.objects.filter(account=user, status=Visit.Status.IN_PROGRESS).count()
        if unpaid:
            out.append(
                Todo(
                    kind="consult.to_pay", title="待支付的问诊", count=unpaid, urgent=True, page="/pages/consult/visits"
                )
            )
        if live:
            out.append(
                Todo(
                    kind="consult.to_join",
                    title="医生已叫号，请进入问诊",
                    count=live,
                    urgent=True,
                    page="/pages/consult/visits",
                )
            )
    return out
