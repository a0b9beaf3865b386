"""Visit lifecycle: (current status, action) -> next status. Anything not listed is
refused by ``apps.core.lifecycle.transition`` with nothing written.

R1/R4: the only way into ``accepted`` is the doctor's ``accept`` (复诊 confirmed,
identity stepped up, prior diagnosis on file: checked by the service before the
transition). R2: ``terminate`` from any open state refunds in full."""

from __future__ import annotations

from .models import Visit

S = Visit.Status
VISIT_TRANSITIONS: dict[tuple[str, str], str] = {
    (S.PENDING_PAYMENT, "pay"): S.WAITING,  # commerce: the order was paid
    (S.PENDING_PAYMENT, "cancel"): S.CANCELLED,  # the patient, or unpaid in time (sweep)
    (S.WAITING, "reschedule"): S.WAITING,  # another slot of the same doctor and kind
    (S.WAITING, "take"): S.WAITING,  # a doctor takes it from the department queue
    (S.WAITING, "accept"): S.ACCEPTED,
    (S.WAITING, "cancel"): S.CANCELLED,  # refund by rule (services.cancel_refund_fen)
    (S.WAITING, "terminate"): S.TERMINATED,
    (S.ACCEPTED, "call"): S.IN_PROGRESS,
    (S.ACCEPTED, "terminate"): S.TERMINATED,
    (S.ACCEPTED, "cancel"): S.CANCELLED,  # the slot closed, or not called in time (sweep): full refund
    (S.IN_PROGRESS, "end"): S.ENDED,  # the doctor, or the timed session's deadline
    (S.IN_PROGRESS, "terminate"): S.TERMINATED,
}

OPEN = frozenset({S.PENDING_PAYMENT, S.WAITING, S.ACCEPTED, S.IN_PROGRESS})
# Who performs which action (the table says when).
PATIENT_ACTIONS = ("cancel", "reschedule")
DOCTOR_ACTIONS = ("take", "accept", "call", "end", "terminate")
SYSTEM_ACTIONS = ("pay", "cancel", "end")  # commerce, the sweeps, the timed session's deadline
