"""The one way a lifecycle's status changes.

Each lifecycle keeps a literal table ``{(status, action): next status}`` next
to its model (``apps/psych/states.py``, ``recordings/models.py``). Its services
call :func:`transition`, which in one transaction locks the row, checks the
table, saves the status and the fields the caller changed, writes a
:class:`~apps.core.models.TransitionEvent`, appends the audit record when the
change touches patient data, and publishes to sockets only after commit. An
action the table does not list raises :class:`TransitionRefused` before
anything is written. API rows carry :func:`allowed_actions` so clients never
copy a table.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import models, transaction

from apps.audit.services import audit_record
from hub.errors import ApiError
from hub.realtime.sessions import publish_on_commit

from .models import TransitionEvent

# (current status, action) -> next status; anything not listed is refused.
Table = Mapping[tuple[str, str], str]
# (topic, event, data) pushed to the topic's sockets once the change has committed.
Publication = tuple[str, str, dict[str, Any]]

M = TypeVar("M", bound=models.Model)


class TransitionRefused(ApiError):
    """The table does not allow ``action`` from the current status; nothing was written."""

    # Not bound to a table: each lifecycle passes its own ``<domain>.transition_refused``
    # code (declared 409 in that domain's table).
    def __init__(self, *, code: str, status: str, status_label: str, action: str) -> None:
        self._set(code, 409, f"当前状态为“{status_label}”，不能执行该操作", {"status": status, "action": action})


@dataclass(frozen=True)
class AuditEntry:
    """The audit record a transition appends (in its transaction) when it touches patient data."""

    action: str
    object_type: str
    object_id: Any
    detail: dict[str, Any] = field(default_factory=dict)
    actor_username: str = ""  # e.g. "system" when there is no actor

    def write(self, actor: Any) -> None:
        """Append this record (inside the caller's transaction)."""
        audit_record(
            action=self.action,
            actor=actor,
            actor_username=self.actor_username,
            object_type=self.object_type,
            object_id=self.object_id,
            detail=self.detail,
        )


def next_status(table: Table, status: str, action: str) -> str | None:
    return table.get((status, action))


def allowed_actions(table: Table, status: str, *, among: Collection[str] | None = None) -> list[str]:
    """The actions the table allows from ``status`` (optionally only those in
    ``among``, e.g. the ones the caller's role performs), in table order."""
    return [a for (s, a) in table if s == status and (among is None or a in among)]


def _status_label(obj: models.Model, status: str) -> str:
    choices = dict(obj._meta.get_field("status").flatchoices)  # type: ignore[union-attr]
    return str(choices.get(status, status))


def require(
    obj: models.Model,
    action: str,
    *,
    table: Table,
    code: str,
    refused: Callable[[str, str], Exception] | None = None,
) -> str:
    """Return the status ``action`` leads to from ``obj.status``, or raise.

    ``refused(status, action)`` may give a lifecycle its own error for some
    refusals; the default is :class:`TransitionRefused` with ``code``."""
    status = str(obj.status)  # type: ignore[attr-defined]
    target = next_status(table, status, action)
    if target is None:
        if refused is not None:
            raise refused(status, action)
        raise TransitionRefused(code=code, status=status, status_label=_status_label(obj, status), action=action)
    return target


def transition(
    obj: M,
    action: str,
    *,
    table: Table,
    actor: Any,
    code: str,
    reason: str = "",
    fields: Iterable[str] = (),
    audit: AuditEntry | None = None,
    publish: Callable[[M], Iterable[Publication]] | None = None,
    refused: Callable[[str, str], Exception] | None = None,
) -> M:
    """Apply ``action`` to ``obj`` under the table, or raise without writing.

    The caller sets the other fields the action changes on ``obj`` beforehand
    and names them in ``fields``. ``publish(obj)`` is called after the save
    and its publications go out only once the transaction commits. A
    self-loop (same status, e.g. saving another answer) saves the fields but
    writes no event row: the status did not change.
    """
    model = type(obj)
    with transaction.atomic():
        # The row lock serialises concurrent transitions of one object; the status
        # is taken from the locked row, not from a possibly stale instance.
        current = model._default_manager.select_for_update().filter(pk=obj.pk).values_list("status", flat=True).get()
        obj.status = current  # type: ignore[attr-defined]
        target = require(obj, action, table=table, code=code, refused=refused)
        obj.status = target  # type: ignore[attr-defined]
        obj.save(update_fields=["status", *fields])
        if target != current:
            TransitionEvent.objects.create(
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                action=action,
                from_status=current,
                to_status=target,
                actor=actor,
                reason=reason[:500],
            )
        if audit is not None:
            audit.write(actor)
        for topic, event, data in publish(obj) if publish is not None else ():
            publish_on_commit(topic, event, data)
    return obj
