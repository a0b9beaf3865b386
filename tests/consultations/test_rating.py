"""The patient's 评价: the visit's account, ended visits, once; stars, fixed tags, a short
encrypted comment; the doctor's aggregate moves with it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from apps.consultations.errors import ConsultError
from apps.consultations.models import DoctorProfile, Rating, Visit
from apps.consultations.rating import rate
from tests.conftest import add_patient, make_patient
from tests.consultations.clinical_factories import make_clinic, make_visit

pytestmark = pytest.mark.django_db


def test_rate_once_and_the_aggregate() -> None:
    c = make_clinic(Visit.Status.ENDED)
    api = c.account.api()
    r = api.post(
        f"/consultations/visits/{c.visit.public_id}/rating",
        {"stars": 4, "tags": ["回复及时", "讲解清楚"], "comment": "医生很耐心"},
    )
    assert r.status_code == 201, r.json()
    assert r.json() == {"stars": 4, "tags": ["回复及时", "讲解清楚"]}
    profile = DoctorProfile.objects.get(pk=c.profile.pk)
    assert (profile.rating_sum, profile.rating_count) == (4, 1)
    with connection.cursor() as cur:
        cur.execute("SELECT comment FROM consultations_rating WHERE visit_id = %s", [c.visit.pk])
        assert "耐心" not in cur.fetchone()[0]
    # Once.
    r = api.post(f"/consultations/visits/{c.visit.public_id}/rating", {"stars": 1})
    assert r.status_code == 409 and r.json()["code"] == "consult.already_rated"
    # A second visit of the same doctor adds to the aggregate.
    account = make_patient("13900000095", "孙八")
    second = make_visit(c.doctor, c.profile, account, add_patient(account, "孙八"), status=Visit.Status.ENDED)
    assert (
        account.api().post(f"/consultations/visits/{second.public_id}/rating", {"stars": 5, "tags": []}).status_code
        == 201
    )
    profile.refresh_from_db()
    assert (profile.rating_sum, profile.rating_count) == (9, 2)


def test_refusals_write_nothing() -> None:
    c = make_clinic(Visit.Status.IN_PROGRESS)
    api = c.account.api()
    path = f"/consultations/visits/{c.visit.public_id}/rating"
    r = api.post(path, {"stars": 5})
    assert r.status_code == 409 and r.json()["code"] == "consult.not_ended"
    Visit.objects.filter(pk=c.visit.pk).update(status=Visit.Status.ENDED)
    assert api.post(path, {"stars": 6}).status_code == 422
    assert api.post(path, {"stars": 0}).status_code == 422
    assert api.post(path, {"stars": 5, "tags": ["医术高明"]}).status_code == 422  # not in the list
    assert api.post(path, {"stars": 5, "tags": ["态度亲切", "态度亲切"]}).status_code == 422
    assert api.post(path, {"stars": 5, "comment": "好" * 301}).status_code == 422
    # Not the visit's account (the doctor, a stranger): 404.
    assert c.doctor.api().post(path, {"stars": 5}).status_code == 404
    assert make_patient("13900000096", "路人").api().post(path, {"stars": 5}).status_code == 404
    assert not Rating.objects.exists()
    profile = DoctorProfile.objects.get(pk=c.profile.pk)
    assert (profile.rating_sum, profile.rating_count) == (0, 0)
    assert api.post(path, {"stars": 5, "comment": "好" * 300}).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_ratings_lose_no_update_and_rate_a_visit_once() -> None:
    c = make_clinic(Visit.Status.ENDED)
    accounts = [make_patient(f"139000001{n:02d}", f"患者{n}") for n in range(6)]
    visits = [
        make_visit(c.doctor, c.profile, a, add_patient(a, f"患者{n}"), status=Visit.Status.ENDED)
        for n, a in enumerate(accounts)
    ]

    def one(args: tuple[object, Visit, int]) -> str:
        account, visit, stars = args
        try:
            rate(user=account.user, visit_id=visit.public_id, stars=stars, tags=[])  # type: ignore[attr-defined]
            return "ok"
        except ConsultError as exc:
            return exc.code
        finally:
            connections.close_all()

    jobs = [(a, v, 1 + n % 5) for n, (a, v) in enumerate(zip(accounts, visits, strict=True))]
    jobs += [(accounts[0], visits[0], 5)] * 3  # the same visit, again, at the same time
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, jobs))
    assert results.count("ok") == 6 and results.count("consult.already_rated") == 3
    profile = DoctorProfile.objects.get(pk=c.profile.pk)
    assert profile.rating_count == 6 == Rating.objects.count()
    assert profile.rating_sum == sum(r.stars for r in Rating.objects.all())
