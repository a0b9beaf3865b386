"""Real-time events this domain publishes (to ``user:<id>`` topics, after
commit). Payloads carry ids and short summaries; clients fetch details."""

from __future__ import annotations

from typing import Any

from hub.realtime.sessions import publish_on_commit

from .models import Alert


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


def alert_payload(alert: Alert, scale_code: str) -> dict[str, Any]:
    return {
        "alert_id": alert.pk,
        "status": alert.status,
        "status_label": Alert.Status(alert.status).label,
        "patient_id": alert.patient_id,
        "patient_name": alert.patient.name,
        "scale_code": scale_code,
        "label": alert.label,
        "result_id": alert.result_id,
        "ack_deadline": alert.ack_deadline.isoformat(),
        "title": f"心理测评危急预警：{alert.patient.name}（{scale_code}）",
    }


def publish_alert(alert: Alert, event: str, scale_code: str) -> None:
    """To the assigning doctor and, once escalated, the on-duty doctor too."""
    data = alert_payload(alert, scale_code)
    recipients = {alert.doctor_id}
    if alert.escalated_to_id:
        recipients.add(alert.escalated_to_id)
    for user_id in sorted(recipients):
        publish_on_commit(user_topic(user_id), event, data)


def publish_to_user(user_id: int, event: str, data: dict[str, Any]) -> None:
    publish_on_commit(user_topic(user_id), event, data)
