"""What is waiting for someone, from every module, through one API.

Each module registers a provider in its ``AppConfig.ready()``; a provider gets
the signed-in user and returns the to-dos it owns for them (nothing for roles
it does not serve). The patient app's "待办" strip, the console workbench and
the sidebar badges all read ``GET /api/v1/todos``; no client counts on its own.

    from apps.todos.registry import Todo, register

    def _todos(user):
        ...
        return [Todo(kind="psych.scales_to_fill", title="待填写的心理量表", count=n, page="/pages/psych/list")]

    register("psych", _todos)

A provider that fails is logged and left out (the answer says ``partial``);
one module's bug never blanks the home page of every user."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.accounts.models import User

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Todo:
    kind: str  # "<module>.<what>", stable, for clients and tests
    title: str  # what is waiting, in Chinese ("待填写的心理量表")
    count: int
    detail: str = ""  # one line a person reads ("PHQ-9 等 2 项，12月3日 18:00 前")
    urgent: bool = False  # overdue, critical or about to escalate
    due_at: dt.datetime | None = None  # the earliest deadline among them
    page: str = ""  # patient app page that handles them
    route: str = ""  # console route name that handles them (also the sidebar badge's entry)
    query: dict[str, str] = field(default_factory=dict)  # route query for the console


Provider = Callable[[User], list[Todo]]

_providers: dict[str, Provider] = {}


def register(module: str, provider: Provider) -> None:
    """One provider per module; registering again replaces it (autoreload, tests)."""
    _providers[module] = provider


def modules() -> list[str]:
    return sorted(_providers)


def todos_for(user: User) -> tuple[list[Todo], bool]:
    """All non-empty to-dos of ``user``: urgent first, then by deadline. Returns
    (items, partial) where partial says a provider failed and was left out."""
    items: list[Todo] = []
    partial = False
    for module in modules():
        try:
            items.extend(t for t in _providers[module](user) if t.count > 0)
        except Exception:  # one module's failure must not blank the others
            log.exception("todo provider %s failed for user %s", module, user.pk)
            partial = True
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    items.sort(key=lambda t: (not t.urgent, t.due_at or far, t.kind))
    return items, partial
