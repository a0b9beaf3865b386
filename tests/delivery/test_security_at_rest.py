"""security.md 5.3: a shipment's recipient (copied from the address book when the
shipment is made) is ciphertext at rest too, and an address's ciphertext cannot
be moved into a shipment's column and read there."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.delivery.models import Shipment
from hub import crypto

from .conftest import KIND, PHONE, RECIPIENT, SourceBook, World

pytestmark = pytest.mark.django_db


def test_a_shipments_recipient_is_ciphertext_at_rest_and_bound_to_its_column(
    world: World, test_sources: SourceBook
) -> None:
    test_sources.add("rx-at-rest", world.me)
    api = world.pharmacist.api()
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-at-rest", "method": "courier"})
    assert r.status_code == 201, r.content
    sid = r.json()["id"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT name_enc, phone_enc, detail_enc FROM delivery_shipment WHERE id = %s", [sid])
        shipment_row = cursor.fetchone()
        cursor.execute("SELECT name_enc, phone_enc, detail_enc FROM delivery_address WHERE id = %s", [world.address.pk])
        address_row = cursor.fetchone()
    assert all(v.startswith("v1:") for v in shipment_row)
    text = str(shipment_row)
    assert RECIPIENT not in text and PHONE not in text and "天河路" not in text
    # Through the model (the pharmacist's view) the recipient is the address's.
    shipment = Shipment.objects.get(pk=sid)
    assert (shipment.recipient_name, shipment.phone, shipment.detail) == (RECIPIENT, PHONE, world.address.detail)
    # Encrypted afresh for the shipment's own columns, not copied.
    assert not set(shipment_row) & set(address_row)

    # An address ciphertext written into the shipment's column does not decrypt there.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE delivery_shipment SET phone_enc = %s WHERE id = %s", [address_row[1], sid])
    moved = Shipment.objects.get(pk=sid)
    with pytest.raises(crypto.DecryptionError):
        _ = moved.phone
