"""Definitions are data: published versions are immutable, a new scale is a
JSON file (no code), and assignments keep the version they were made with."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from apps.psych.definitions import BUILTIN_DIR
from apps.psych.models import ScaleDefinition

pytestmark = pytest.mark.django_db


def test_builtin_scales_are_published_once() -> None:
    assert sorted(ScaleDefinition.objects.values_list("code", flat=True)) == ["EPDS", "GAD-7", "PHQ-9", "SAS", "SDS"]
    call_command("psych_load_scales")
    assert ScaleDefinition.objects.count() == 5


def test_a_new_scale_is_a_json_file_and_a_published_version_is_immutable(care, tmp_path, settings) -> None:
    raw = json.loads((BUILTIN_DIR / "gad7.json").read_text())
    raw.update(code="GAD-2", name="广泛性焦虑量表两条目版（GAD-2）", short_name="GAD-2")
    raw["items"] = raw["items"][:2]
    raw["norms"]["default"]["bands"] = [
        {
            "min": 0,
            "max": 2,
            "code": "negative",
            "label": "筛查阴性",
            "severity": 0,
            "advice": "目前没有明显的焦虑症状。",
        },
        {
            "min": 3,
            "max": 6,
            "code": "positive",
            "label": "筛查阳性",
            "severity": 1,
            "advice": "建议完成 GAD-7 进一步评估。",
        },
    ]
    raw["flags"] = []
    path = tmp_path / "gad2.json"
    path.write_text(json.dumps(raw, ensure_ascii=False))
    settings.PSYCH_SCALE_DIRS = [str(tmp_path)]
    call_command("psych_load_scales")
    assert ScaleDefinition.objects.filter(code="GAD-2", version=1).exists()
    r = care.doctor.api().post(
        "/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["GAD-2"], "due_date": "2099-01-01"}
    )
    # 2099 is beyond the 90-day window: refused; a near date works.
    assert r.json()["code"] == "psych.due_invalid"
    from .conftest import due

    r = care.doctor.api().post(
        "/psych/assignments", {"patient_id": care.me.pk, "scale_codes": ["GAD-2"], "due_date": due()}
    )
    assert r.status_code == 201
    aid = r.json()["items"][0]["id"]
    report = care.account.api().post(f"/psych/assignments/{aid}/submit", {"answers": {"1": 2, "2": 1}}).json()
    assert (report["raw_score"], report["band_label"]) == (3, "筛查阳性")
    # Editing the published version is refused ...
    raw["items"][0]["text"] = "改过的题目"
    path.write_text(json.dumps(raw, ensure_ascii=False))
    with pytest.raises(CommandError, match="bump the version"):
        call_command("psych_load_scales")
    # ... a new version is published beside it; the old assignment keeps v1.
    raw["version"] = 2
    path.write_text(json.dumps(raw, ensure_ascii=False))
    call_command("psych_load_scales")
    assert care.doctor.api().get("/psych/scales/GAD-2").json()["version"] == 2
    assert care.account.api().get(f"/psych/assignments/{aid}").json()["definition"]["version"] == 1
