from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from apps.accounts.idcard import InvalidIdNumber, make_id_number, parse_id_number
from apps.accounts.models import Patient
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

ID_SELF = make_id_number("440106", dt.date(1985, 3, 14), "123")  # odd 17th digit: male
ID_CHILD = make_id_number("440106", dt.date(2015, 7, 1), "042")  # even: female


def test_id_number_checksum_birth_and_sex() -> None:
    info = parse_id_number(ID_SELF)
    assert info.birth_date == dt.date(1985, 3, 14) and info.sex == "M"
    assert parse_id_number(ID_CHILD).sex == "F"
    assert parse_id_number("11010519491231002X").sex == "F"  # the GB 11643 example number
    bad_check = ID_SELF[:17] + ("0" if ID_SELF[17] != "0" else "1")
    for bad in [
        bad_check,
        ID_SELF[:17],
        "44010619850230123X",
        "4401061985031412a4",
        "440106" + "2999" + "0101" + "1234",
    ]:
        with pytest.raises(InvalidIdNumber):
            parse_id_number(bad)


def test_patient_adds_family_members_with_derived_fields_and_masking(patient) -> None:
    client = patient.api()
    r = client.post(
        "/accounts/patients", {"name": "测试患者", "id_number": ID_SELF, "phone": "13900000001", "relation": "self"}
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["sex"] == "M" and body["birth_date"] == "1985-03-14" and body["is_self"]
    assert body["id_number_masked"] == ID_SELF[:3] + "*" * 11 + ID_SELF[-4:]
    assert body["phone_masked"] == "139****0001"
    r = client.post("/accounts/patients", {"name": "小宝", "id_number": ID_CHILD.lower(), "relation": "child"})
    assert r.status_code == 201
    listing = client.get("/accounts/patients").json()
    assert listing["count"] == 2
    assert ID_SELF not in str(listing) and "13900000001" not in str(listing)
    assert AuditEvent.objects.filter(action="patient.list", actor_id=patient.user.pk).exists()


def test_invalid_or_duplicate_patients_are_refused_and_nothing_is_written(patient) -> None:
    client = patient.api()
    r = client.post("/accounts/patients", {"name": "某人", "id_number": ID_SELF[:17] + "0", "relation": "other"})
    if ID_SELF[17] != "0":
        assert r.status_code == 422 and r.json()["code"] == "accounts.id_number_invalid"
    r = client.post("/accounts/patients", {"name": "某人", "id_number": ID_SELF, "relation": "friend"})
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert (
        client.post("/accounts/patients", {"name": "某人", "id_number": ID_SELF, "relation": "other"}).status_code
        == 201
    )
    r = client.post("/accounts/patients", {"name": "某人", "id_number": ID_SELF, "relation": "spouse"})
    assert r.status_code == 409 and r.json()["code"] == "accounts.patient_exists"
    assert Patient.objects.count() == 1


def test_family_limit(patient) -> None:
    client = patient.api()
    for n in range(5):
        number = make_id_number("440106", dt.date(1990, 1, n + 1), "011")
        assert (
            client.post(
                "/accounts/patients", {"name": f"成员{n}", "id_number": number, "relation": "other"}
            ).status_code
            == 201
        )
    number = make_id_number("440106", dt.date(1990, 2, 1), "011")
    r = client.post("/accounts/patients", {"name": "成员六", "id_number": number, "relation": "other"})
    assert r.status_code == 422 and r.json()["code"] == "accounts.family_limit"


def test_a_patient_cannot_touch_another_patients_family(patient, other_patient) -> None:
    mine = patient.api().post("/accounts/patients", {"name": "小宝", "id_number": ID_CHILD, "relation": "child"}).json()
    theirs = other_patient.api()
    assert theirs.get("/accounts/patients").json()["count"] == 0
    r = theirs.delete(f"/accounts/patients/{mine['id']}")
    assert r.status_code == 404
    assert Patient.objects.get(pk=mine["id"]).is_active


def test_self_cannot_be_removed_but_family_can(patient) -> None:
    client = patient.api()
    me = client.post("/accounts/patients", {"name": "测试患者", "id_number": ID_SELF, "relation": "self"}).json()
    kid = client.post("/accounts/patients", {"name": "小宝", "id_number": ID_CHILD, "relation": "child"}).json()
    assert client.delete(f"/accounts/patients/{me['id']}").json()["code"] == "accounts.cannot_remove_self"
    assert client.delete(f"/accounts/patients/{kid['id']}").status_code == 204
    assert client.get("/accounts/patients").json()["count"] == 1


def test_staff_cannot_use_the_patient_family_endpoints(nurse) -> None:
    r = nurse.api().get("/accounts/patients")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_raw_sql_shows_no_plain_identifiers(patient) -> None:
    patient.api().post(
        "/accounts/patients", {"name": "测试患者", "id_number": ID_SELF, "phone": "13900000001", "relation": "self"}
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_patient")
        patient_rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM accounts_user")
        user_rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM audit_auditevent")
        audit_rows = repr(cursor.fetchall())
    for dump in (patient_rows, user_rows, audit_rows):
        assert ID_SELF not in dump
        assert "13900000001" not in dump
    assert "v1:" in patient_rows  # ciphertext is there
    stored = Patient.objects.get()
    assert stored.id_number == ID_SELF and stored.phone == "13900000001"


def test_ciphertext_cannot_be_moved_between_columns(patient) -> None:
    from hub import crypto

    token = crypto.encrypt("13900000001", context="patient.phone")
    with pytest.raises(crypto.DecryptionError, match=r"cannot decrypt patient\.id_number: authentication failed"):
        crypto.decrypt(token, context="patient.id_number")


def test_consents_are_recorded_and_withdrawable(patient) -> None:
    client = patient.api()
    assert all(not c["granted"] for c in client.get("/accounts/consents").json()["items"])
    assert client.post("/accounts/consents", {"purpose": "recording", "granted": True}).json()["granted"] is True
    assert client.post("/accounts/consents", {"purpose": "recording", "granted": False}).json()["granted"] is False
    from apps.accounts.selectors import has_consent

    assert not has_consent(patient.user, "recording")
    assert AuditEvent.objects.filter(action="consent.withdraw").count() == 1
    assert client.post("/accounts/consents", {"purpose": "marketing", "granted": True}).status_code == 422


# --- issue 10, defect 6: one spouse, editing, the limit known up front ------------------


def test_only_one_spouse_and_the_list_says_what_is_left(patient) -> None:
    api = patient.api()
    listed = api.get("/accounts/patients").json()
    assert (listed["family_limit"], listed["family_remaining"], listed["spouse_registered"]) == (5, 5, False)
    first = api.post(
        "/accounts/patients",
        {"name": "王芳", "id_number": make_id_number("440106", dt.date(1987, 1, 2), "022"), "relation": "spouse"},
    )
    assert first.status_code == 201, first.json()
    second = api.post(
        "/accounts/patients",
        {"name": "李芳", "id_number": make_id_number("440106", dt.date(1988, 1, 2), "022"), "relation": "spouse"},
    )
    assert (second.status_code, second.json()["code"]) == (409, "accounts.spouse_exists")
    assert "配偶" in second.json()["message"]
    assert Patient.objects.filter(owner=patient.user, relation="spouse").count() == 1
    listed = api.get("/accounts/patients").json()
    assert (listed["family_remaining"], listed["spouse_registered"]) == (4, True)


def test_a_family_member_is_edited_but_not_their_id_number_and_self_stays_self(patient) -> None:
    api = patient.api()
    me = api.post("/accounts/patients", {"name": "张三", "id_number": ID_SELF, "relation": "self"}).json()
    # A child needs no phone of their own.
    kid = api.post("/accounts/patients", {"name": "张小", "id_number": ID_CHILD, "relation": "child"})
    assert kid.status_code == 201 and kid.json()["phone_masked"] == ""
    kid_id = kid.json()["id"]
    r = api.patch(f"/accounts/patients/{kid_id}", {"name": "张小红", "phone": "13912345678", "relation": "child"})
    assert r.status_code == 200, r.json()
    assert (r.json()["name"], r.json()["phone_masked"]) == ("张小红", "139****5678")
    row = Patient.objects.get(pk=kid_id)
    assert (row.name, row.phone, row.id_number) == ("张小红", "13912345678", ID_CHILD)
    audit = AuditEvent.objects.get(action="patient.update", object_id=str(kid_id))
    assert sorted(audit.detail["fields"]) == ["name", "phone"]
    for target, relation in ((me["id"], "parent"), (kid_id, "self")):
        refused = api.patch(f"/accounts/patients/{target}", {"name": "某某", "relation": relation})
        assert (refused.status_code, refused.json()["code"]) == (409, "accounts.self_relation_fixed")
    assert Patient.objects.get(pk=me["id"]).name == "张三"
    assert AuditEvent.objects.filter(action="patient.update").count() == 1


def test_nobody_edits_another_accounts_family_member(patient, other_patient) -> None:
    kid = patient.api().post("/accounts/patients", {"name": "张小", "id_number": ID_CHILD, "relation": "child"}).json()
    r = other_patient.api().patch(f"/accounts/patients/{kid['id']}", {"name": "改名", "relation": "child"})
    assert r.status_code == 404
    assert Patient.objects.get(pk=kid["id"]).name == "张小"
