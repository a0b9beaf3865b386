"""Every built-in scale against answer sheets with known results: lowest,
highest, each band boundary, reverse items, both norms and both roundings, and
critical items whatever the total. Sheets are written as the patient sees them
(the option label chosen per item) where reverse scoring matters, so the test
fails if reverse items lose their stored option values."""

from __future__ import annotations

from typing import Any

import pytest

from apps.psych.definitions import BUILTIN_DIR, DefinitionError, expand, load_file, standardise
from apps.psych.scoring import AnswerError, score

DEFS = {p.stem: load_file(p) for p in BUILTIN_DIR.glob("*.json")}
PHQ9, GAD7, SDS, SAS, EPDS = DEFS["phq9"], DEFS["gad7"], DEFS["sds"], DEFS["sas"], DEFS["epds"]


def by_labels(defn: dict[str, Any], labels: list[str]) -> dict[int, int]:
    """Answer sheet from the option labels chosen, item by item."""
    out = {}
    for item, label in zip(defn["items"], labels, strict=True):
        out[item["no"]] = next(o["value"] for o in item["options"] if o["label"] == label)
    return out


def with_total(defn: dict[str, Any], total: int, avoid: tuple[int, ...] = ()) -> dict[int, int]:
    """A valid sheet with the given raw total, filled greedily; items in
    ``avoid`` stay at their lowest value (e.g. keep critical items quiet)."""
    sheet = {it["no"]: min(o["value"] for o in it["options"]) for it in defn["items"]}
    rest = total - sum(sheet.values())
    for it in defn["items"]:
        if it["no"] in avoid:
            continue
        top = max(o["value"] for o in it["options"])
        add = min(rest, top - sheet[it["no"]])
        sheet[it["no"]] += add
        rest -= add
    assert rest == 0, f"total {total} not reachable"
    assert sum(sheet.values()) == total
    return sheet


def s(defn: dict[str, Any], sheet: dict[int, int], norm: str = "china", rounding: str = "truncate") -> Any:
    return score(defn, sheet, norm=norm, rounding=rounding)


# --- PHQ-9 ---------------------------------------------------------------------------------

PHQ_BANDS = [(0, "none"), (4, "none"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
             (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe"), (27, "severe")]  # fmt: skip


@pytest.mark.parametrize(("total", "band"), PHQ_BANDS)
def test_phq9_band_boundaries(total: int, band: str) -> None:
    result = s(PHQ9, with_total(PHQ9, total, avoid=(9,) if total <= 24 else ()))
    assert (result.raw, result.standard, result.band_code) == (total, total, band)
    assert ("refer" in [f["code"] for f in result.flags]) == (total >= 10)


def test_phq9_lowest_and_highest_by_label() -> None:
    low = s(PHQ9, by_labels(PHQ9, ["完全不会"] * 9))
    assert (low.raw, low.band_label, low.critical) == (0, "无抑郁症状", [])
    high = s(PHQ9, by_labels(PHQ9, ["几乎每天"] * 9))
    assert (high.raw, high.band_label) == (27, "重度抑郁")
    assert [c["code"] for c in high.critical] == ["suicide_risk"]


def test_phq9_item9_fires_whatever_the_total() -> None:
    only_item9 = by_labels(PHQ9, ["完全不会"] * 8 + ["好几天"])
    result = s(PHQ9, only_item9)
    assert result.raw == 1 and result.band_code == "none"
    assert result.critical == [
        {
            "code": "suicide_risk",
            "item": 9,
            "value": 1,
            "label": "第9题阳性：存在自伤或自杀意念",
            "action": "请立即联系患者评估自杀风险",
        }
    ]
    # A severe total without item 9 raises nothing.
    no_item9 = with_total(PHQ9, 24, avoid=(9,))
    assert s(PHQ9, no_item9).band_code == "severe" and s(PHQ9, no_item9).critical == []


# --- GAD-7 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_boundaries(total: int, band: str) -> None:
    result = s(GAD7, with_total(GAD7, total))
    assert (result.raw, result.standard, result.band_code, result.critical) == (total, total, band, [])
    assert ("refer" in [f["code"] for f in result.flags]) == (total >= 10)


def test_gad7_lowest_highest() -> None:
    assert s(GAD7, by_labels(GAD7, ["完全不会"] * 7)).raw == 0
    high = s(GAD7, by_labels(GAD7, ["几乎每天"] * 7))
    assert (high.raw, high.band_label) == (21, "重度焦虑")


# --- SDS -------------------------------------------------------------------------------------

SDS_REVERSE = {2, 5, 6, 11, 12, 14, 16, 17, 18, 20}


def test_sds_reverse_items_are_option_values() -> None:
    for item in SDS["items"]:
        values = [o["value"] for o in item["options"]]
        assert values == ([4, 3, 2, 1] if item["no"] in SDS_REVERSE else [1, 2, 3, 4]), item["no"]


def test_sds_same_label_everywhere_scores_reverse_items_the_other_way() -> None:
    # "没有或很少时间" on every item: 10 forward items x 1 + 10 reverse items x 4 = 50.
    result = s(SDS, by_labels(SDS, ["没有或很少时间"] * 20))
    assert result.raw == 50 and result.standard == 62  # int(62.5)
    assert result.band_code == "mild"
    # Rounding half up moves 62.5 to 63: a different band under the China norm.
    rounded = s(SDS, by_labels(SDS, ["没有或很少时间"] * 20), rounding="round")
    assert (rounded.standard, rounded.band_code, rounded.rounding) == (63, "moderate", "round")


def test_sds_lowest_and_highest() -> None:
    lowest_labels = ["没有或很少时间" if n not in SDS_REVERSE else "绝大部分或全部时间" for n in range(1, 21)]
    assert set(by_labels(SDS, lowest_labels).values()) == {1}
    low = s(SDS, by_labels(SDS, lowest_labels))
    assert (low.raw, low.standard, low.band_code, low.critical) == (20, 25, "normal", [])
    highest_labels = ["绝大部分或全部时间" if n not in SDS_REVERSE else "没有或很少时间" for n in range(1, 21)]
    assert set(by_labels(SDS, highest_labels).values()) == {4}
    high = s(SDS, by_labels(SDS, highest_labels))
    assert (high.raw, high.standard, high.band_code) == (80, 100, "severe")


# (raw, truncated standard, China band, Zung band)
SDS_BOUNDARIES = [
    (20, 25, "normal", "normal"),
    (39, 48, "normal", "normal"),
    (40, 50, "normal", "mild"),  # Zung cut-off 50
    (42, 52, "normal", "mild"),
    (43, 53, "mild", "mild"),  # China cut-off 53
    (47, 58, "mild", "mild"),
    (48, 60, "mild", "moderate"),
    (50, 62, "mild", "moderate"),
    (51, 63, "moderate", "moderate"),
    (55, 68, "moderate", "moderate"),
    (56, 70, "moderate", "severe"),
    (58, 72, "moderate", "severe"),
    (59, 73, "severe", "severe"),
    (80, 100, "severe", "severe"),
]


@pytest.mark.parametrize(("raw", "standard", "china", "zung"), SDS_BOUNDARIES)
def test_sds_band_boundaries_under_both_norms(raw: int, standard: int, china: str, zung: str) -> None:
    sheet = with_total(SDS, raw, avoid=(19,) if raw <= 77 else ())
    c = s(SDS, sheet, norm="china")
    z = s(SDS, sheet, norm="zung")
    assert (c.raw, c.standard, c.band_code, c.norm) == (raw, standard, china, "china")
    assert (z.standard, z.band_code, z.norm) == (standard, zung, "zung")
    assert "中国常模" in c.norm_label and "Zung" in z.norm_label


def test_sds_rounding_setting_at_a_china_boundary() -> None:
    sheet = with_total(SDS, 42, avoid=(19,))  # 52.5
    assert s(SDS, sheet, rounding="truncate").band_code == "normal"
    assert s(SDS, sheet, rounding="round").band_code == "mild"


def test_sds_item19_fires_at_2_not_at_1_whatever_the_total() -> None:
    # Lowest possible total except item 19 = 2 ("小部分时间"): still an alert.
    lowest = {n: min(o["value"] for o in SDS["items"][n - 1]["options"]) for n in range(1, 21)}
    lowest[19] = 2
    result = s(SDS, lowest)
    assert result.band_code == "normal"
    assert [(c["code"], c["item"], c["value"]) for c in result.critical] == [("suicide_risk", 19, 2)]
    lowest[19] = 1
    assert s(SDS, lowest).critical == []


# --- SAS -------------------------------------------------------------------------------------

SAS_REVERSE = {5, 9, 13, 17, 19}

SAS_BOUNDARIES = [
    (20, 25, "normal", "normal"),
    (35, 43, "normal", "normal"),
    (36, 45, "normal", "mild"),  # Zung cut-off 45
    (39, 48, "normal", "mild"),
    (40, 50, "mild", "mild"),  # China cut-off 50
    (47, 58, "mild", "mild"),
    (48, 60, "moderate", "moderate"),
    (55, 68, "moderate", "moderate"),
    (56, 70, "severe", "moderate"),
    (59, 73, "severe", "moderate"),
    (60, 75, "severe", "severe"),
    (80, 100, "severe", "severe"),
]


@pytest.mark.parametrize(("raw", "standard", "china", "zung"), SAS_BOUNDARIES)
def test_sas_band_boundaries_under_both_norms(raw: int, standard: int, china: str, zung: str) -> None:
    sheet = with_total(SAS, raw)
    assert (s(SAS, sheet).standard, s(SAS, sheet).band_code) == (standard, china)
    assert s(SAS, sheet, norm="zung").band_code == zung
    assert s(SAS, sheet).critical == []


def test_sas_reverse_items_by_label() -> None:
    for item in SAS["items"]:
        values = [o["value"] for o in item["options"]]
        assert values == ([4, 3, 2, 1] if item["no"] in SAS_REVERSE else [1, 2, 3, 4]), item["no"]
    result = s(SAS, by_labels(SAS, ["没有或很少时间"] * 20))
    assert result.raw == 15 * 1 + 5 * 4 == 35 and result.standard == 43  # int(43.75)
    assert s(SAS, by_labels(SAS, ["没有或很少时间"] * 20), rounding="round").standard == 44


# --- EPDS ------------------------------------------------------------------------------------

WORST_FIRST = {3, 5, 6, 7, 8, 9, 10}


def test_epds_worst_first_items_score_3_to_0() -> None:
    for item in EPDS["items"]:
        values = [o["value"] for o in item["options"]]
        assert values == ([3, 2, 1, 0] if item["no"] in WORST_FIRST else [0, 1, 2, 3]), item["no"]
    # The first option of every item: 3 on worst-first items, 0 on the others.
    first = {it["no"]: it["options"][0]["value"] for it in EPDS["items"]}
    result = s(EPDS, first)
    assert result.raw == 21 and result.band_code == "probable"
    assert [c["code"] for c in result.critical] == ["self_harm"]


@pytest.mark.parametrize(
    ("total", "band", "flags"),
    [
        (0, "unlikely", []),
        (9, "unlikely", []),
        (10, "possible", ["sensitive_screen"]),
        (12, "possible", ["sensitive_screen"]),
        (13, "probable", ["sensitive_screen", "probable_depression"]),
        (27, "probable", ["sensitive_screen", "probable_depression"]),
    ],
)
def test_epds_band_boundaries(total: int, band: str, flags: list[str]) -> None:
    result = s(EPDS, with_total(EPDS, total, avoid=(10,)))
    assert (result.raw, result.band_code, [f["code"] for f in result.flags], result.critical) == (
        total,
        band,
        flags,
        [],
    )


def test_epds_highest_and_item10_alone() -> None:
    assert s(EPDS, with_total(EPDS, 30)).band_code == "probable"
    sheet = with_total(EPDS, 0)
    sheet[10] = 1  # "很少这样"
    result = s(EPDS, sheet)
    assert result.raw == 1 and result.band_code == "unlikely"
    assert [(c["item"], c["value"]) for c in result.critical] == [(10, 1)]


# --- sheets and definitions ------------------------------------------------------------------


def test_incomplete_or_invalid_sheets_are_refused() -> None:
    sheet = with_total(PHQ9, 5)
    del sheet[4]
    with pytest.raises(AnswerError) as missing:
        s(PHQ9, sheet)
    assert missing.value.item == 4
    sheet[4] = 7
    with pytest.raises(AnswerError):
        s(PHQ9, sheet)
    with pytest.raises(AnswerError):
        s(SDS, {n: 0 for n in range(1, 21)})  # 0 is not an SDS option value


def test_standardise_truncates_or_rounds_half_up() -> None:
    from decimal import Decimal

    m = Decimal("1.25")
    assert [standardise(r, m, "truncate") for r in (41, 42, 43)] == [51, 52, 53]
    assert [standardise(r, m, "round") for r in (41, 42, 43)] == [51, 53, 54]


def test_a_definition_with_a_gap_between_bands_is_refused() -> None:
    import copy
    import json

    raw = json.loads((BUILTIN_DIR / "phq9.json").read_text())
    broken = copy.deepcopy(raw)
    broken["norms"]["default"]["bands"][1]["min"] = 6  # 5 belongs to no band
    with pytest.raises(DefinitionError, match="standard score 5 falls in 0 bands"):
        expand(broken)
    broken = copy.deepcopy(raw)
    broken["critical"][0]["item"] = 10
    with pytest.raises(DefinitionError, match="missing item"):
        expand(broken)
