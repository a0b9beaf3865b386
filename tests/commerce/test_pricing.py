"""Price rules: item discounts, package prices, fee waivers by kind pair, group-paid items."""

from __future__ import annotations

from typing import Any

from apps.commerce import pricing, services
from apps.commerce.models import Order
from apps.commerce.money import yuan
from apps.commerce.pricing import PricedLine, price
from tests.commerce.conftest import Buyer, balanced, checkout


def test_yuan_display() -> None:
    assert [yuan(1250), yuan(0), yuan(5), yuan(-300), yuan(123456)] == [
        "¥12.50",
        "¥0.00",
        "¥0.05",
        "-¥3.00",
        "¥1234.56",
    ]


def test_a_tea_bag_purchase_waives_one_consultation_fee_per_purchase() -> None:
    pricing.register_waiver("t_waive", title="购茶包免问诊费", trigger_kind="tea", waived_kind="consult")
    try:
        lines = [
            PricedLine("consult", "c1", "问诊", 1, 5000),
            PricedLine("consult", "c2", "问诊", 1, 5000),
            PricedLine("tea", "t1", "茶包", 1, 3800),
        ]
        p = price(lines)
        assert p.waivers == ["t_waive"]  # one tea-bag line: one consultation waived, not two
        assert [x.waived_fen for x in p.lines] == [5000, 0, 0]
        assert p.payable_fen == 5000 + 3800 and p.waived_fen == 5000
        assert price(lines[:2]).waived_fen == 0  # no tea bag, no waiver
    finally:
        pricing.unregister("t_waive")


def test_package_price_and_item_discount_and_group_part() -> None:
    pricing.register_package("t_pkg", title="复诊套餐", items={("consult", "c1"): 1, ("tea", "t1"): 1}, price_fen=7000)
    try:
        p = price(
            [
                PricedLine("consult", "c1", "问诊", 1, 5000),
                PricedLine("tea", "t1", "茶包", 1, 3800),
                PricedLine("exam", "e1", "体检", 1, 20000, discount_fen=1000, payer="group"),
            ]
        )
        assert p.packages == ["t_pkg"]
        assert p.lines[0].discount_fen + p.lines[1].discount_fen == 1800  # 8800 -> 7000
        assert p.lines[2].group_fen == 19000 and p.lines[2].payable_fen == 0
        assert p.total_fen == 28800 and p.payable_fen == 7000
        assert p.total_fen - p.discount_fen - p.waived_fen - p.group_fen == p.payable_fen
    finally:
        pricing.unregister("t_pkg")


def test_waiver_and_group_items_are_recorded_in_the_ledger(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    pricing.register_waiver(
        "test_tea_waives_consult", title="购茶包免问诊费", trigger_kind="test_tea", waived_kind="test_consult"
    )
    order = checkout(buyer, ("test_consult", "c1", 1), ("test_tea", "t1", 1), ("test_group", "g1", 1))
    assert (order.total_fen, order.waived_fen, order.group_fen, order.payable_fen) == (28800, 5000, 20000, 3800)
    assert gateway.trades[order.order_no]["amount"] == 3800  # only the self-paid part is charged
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    b = balanced(order)
    assert (b["charge"], b["waiver"], b["group"], b["payment"]) == (28800, -5000, -20000, -3800)


def test_an_order_with_nothing_to_pay_is_paid_without_the_provider(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        order = checkout(buyer, ("test_group", "g1", 1))
    order.refresh_from_db()
    assert order.payable_fen == 0 and order.status == Order.Status.COMPLETED
    assert gateway.prepays == [] and len(shop.paid) == 1
    assert balanced(order)["group"] == -20000
