"""Deferred and periodic work of commerce; every task is safe to re-run."""

from __future__ import annotations

import datetime as dt

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import services


def enqueue(job: str, order_id: int, eta: dt.datetime | None) -> None:
    """Registered with services (apps.py): queue committed work for the worker."""
    if job == "expire":
        order_expire_task.schedule((order_id,), eta=eta)
    else:
        fulfilments_run_task(order_id)


@db_task()
def order_expire_task(order_id: int) -> bool:
    """Scheduled at checkout for the order's deadline; the sweep backs it up."""
    return services.order_expire(order_id)


@db_task()
def fulfilments_run_task(order_id: int) -> dict[str, int]:
    return services.fulfilments_run(order_id)


@db_periodic_task(crontab(minute="*"))
def expire_unpaid_orders() -> dict[str, int]:
    """Every minute: unpaid orders past their deadline are cancelled (a lost
    enqueue or a dead worker delays the cancel by a minute, never loses it)."""
    return services.orders_expire_due()


@db_periodic_task(crontab(minute="*/5"))
def retry_fulfilments() -> dict[str, int]:
    """Every 5 minutes: handlers that failed (or whose run was lost) run again."""
    return services.fulfilments_retry()


@db_periodic_task(crontab(minute="*/5"))
def query_pending_payments() -> dict[str, int]:
    """Every 5 minutes: payments without a notice after 10 minutes are queried,
    refunds the provider never accepted are sent again."""
    from .reconcile import pending_payments_settle, refunds_resubmit

    return pending_payments_settle() | refunds_resubmit()


@db_periodic_task(crontab(hour="2", minute="30"))
def reconcile_yesterday() -> int:
    """Daily at 02:30 UTC (10:30 Beijing; the gateways publish the previous day's
    bill by 10:00): each provider's bill of yesterday against the ledger."""
    from .reconcile import bills_reconcile_yesterday

    return bills_reconcile_yesterday()
