"""Doses and quantities read as people write them (a 20 mg line answered "2E+1")."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.pharmacy.rules import plain_number

from .conftest import Rx, line
from .test_flow import create


@pytest.mark.parametrize(("value", "shown"), [("20", "20"), ("20.000", "20"), ("0.5", "0.5"), ("12.50", "12.5")])
def test_plain_number(value: str, shown: str) -> None:
    assert plain_number(Decimal(value)) == shown


@pytest.mark.django_db
def test_a_twenty_milligram_line_reads_20(rx: Rx) -> None:
    pid = create(rx, lines=[line("AMLO-5", dose="20", quantity="1", days=7)])
    (shown,) = rx.doctor.api().get(f"/pharmacy/prescriptions/{pid}").json()["lines"]
    assert (shown["dose"], shown["quantity"]) == ("20", "1"), shown
