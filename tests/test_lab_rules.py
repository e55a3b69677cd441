"""Rule sets: the documented call for every outcome combination, rule-file validation, lab extensions."""

import itertools
from pathlib import Path

import pytest

from oligolab.errors import InputError
from oligolab.lab.rules import all_outcome_combinations, load_ruleset, shipped_rulesets

# CDC-006-00019 Rev. 08, "2019-nCoV rRT-PCR Diagnostic Panel Results Interpretation Guide":
#   N1+ N2+ RP+/-  -> 2019-nCoV detected (positive)
#   only one of N1, N2 positive, RP +/- -> inconclusive
#   N1- N2- RP+    -> 2019-nCoV not detected (negative)
#   N1- N2- RP-    -> invalid
CDC_GUIDE = {
    ("positive", "positive", "positive"): "positive",
    ("positive", "positive", "negative"): "positive",
    ("positive", "negative", "positive"): "inconclusive",
    ("positive", "negative", "negative"): "inconclusive",
    ("negative", "positive", "positive"): "inconclusive",
    ("negative", "positive", "negative"): "inconclusive",
    ("negative", "negative", "positive"): "negative",
    ("negative", "negative", "negative"): "invalid",
}


def test_shipped_rule_sets():
    assert {"cdc-2019-ncov", "who-charite-e-rdrp"} <= set(shipped_rulesets())
    for rid in shipped_rulesets():
        rs = load_ruleset(rid)
        assert rs.sources and rs.version and rs.sha256


def test_cdc_documented_call_for_every_n1_n2_rp_combination():
    rs = load_ruleset("cdc-2019-ncov")
    combos = all_outcome_combinations(rs)
    assert len(combos) == 8 == len(CDC_GUIDE)
    for outcomes in combos:
        row = rs.interpret(outcomes)
        assert row.call == CDC_GUIDE[(outcomes["N1"], outcomes["N2"], outcomes["RP"])], outcomes
        assert row.report and row is not rs.default


def test_cdc_undocumented_combinations_go_to_review():
    """A missing or indeterminate marker is never turned into a positive or negative call."""
    rs = load_ruleset("cdc-2019-ncov")
    for n1, n2, rp in itertools.product(["positive", "negative", "indeterminate", "missing"], repeat=3):
        call = rs.interpret({"N1": n1, "N2": n2, "RP": rp}).call
        if "indeterminate" in (n1, n2) or "missing" in (n1, n2):
            assert call == "review", (n1, n2, rp)
        elif (n1, n2) == ("negative", "negative") and rp in ("indeterminate", "missing"):
            assert call == "review", (n1, n2, rp)
        else:  # documented rows (RP is 'any' when a marker is positive)
            key = (n1, n2, rp if rp in ("positive", "negative") else "negative")
            assert call == CDC_GUIDE[key], (n1, n2, rp)


def test_cdc_cutoffs_and_controls_follow_the_ifu():
    rs = load_ruleset("cdc-2019-ncov")
    assert {t.positive_below for t in rs.targets.values()} == {40.0}
    assert rs.controls["ntc"].expect == {"N1": "negative", "N2": "negative", "RP": "negative"}
    assert rs.controls["pc"].expect == {"N1": "positive", "N2": "positive", "RP": "positive"}
    assert rs.controls["ec"].expect == {"N1": "negative", "N2": "negative", "RP": "positive"}
    assert rs.target_of("2019-nCoV_N1") == "N1" and rs.target_of("rnase p") == "RP"


# Corman et al. 2020 / Charité-WHO protocol: E screening, RdRp confirmation (defaults marked in the file)
WHO_EXPECTED = {
    ("negative", "missing"): "negative", ("negative", "negative"): "negative",
    ("positive", "positive"): "positive", ("positive", "missing"): "screen_positive",
    ("positive", "negative"): "inconclusive", ("negative", "positive"): "inconclusive",
    ("missing", "positive"): "review", ("missing", "negative"): "review", ("missing", "missing"): "review",
}


def test_who_charite_scheme_for_every_combination():
    rs = load_ruleset("who-charite-e-rdrp")
    combos = all_outcome_combinations(rs, ("positive", "negative", "missing"))
    assert len(combos) == 9
    for o in combos:
        assert rs.interpret(o).call == WHO_EXPECTED[(o["E"], o["RdRp"])], o


def test_lab_extension_changes_only_what_it_says(tmp_path):
    lab = tmp_path / "our-lab.yaml"
    lab.write_text(
        "extends: cdc-2019-ncov\n"
        "id: our-lab-cdc\n"
        "version: '2024.1'\n"
        "targets:\n"
        "  N1: {aliases: [nCoV N1 FAM], positive_below: 38.0}\n"
        "controls:\n"
        "  pc: {expect: {RP: any}}\n")
    rs = load_ruleset(lab)
    assert rs.id == "our-lab-cdc" and rs.label() == "our-lab-cdc v2024.1"
    assert rs.targets["N1"].positive_below == 38.0 and rs.targets["N2"].positive_below == 40.0
    assert rs.target_of("nCoV N1 FAM") == "N1"
    assert rs.controls["pc"].expect["RP"] == "any" and rs.controls["pc"].expect["N1"] == "positive"
    assert [r.call for r in rs.calls] == [r.call for r in load_ruleset("cdc-2019-ncov").calls]
    assert rs.sha256 != load_ruleset("cdc-2019-ncov").sha256


@pytest.mark.parametrize("text,needle", [
    ("id: x\nversion: 1\ntargets: {A: {positive_below: 40}}\ncalls: [{when: {B: positive}, call: p, report: r}]\n",
     "record 'calls[0].when.B'"),
    ("id: x\nversion: 1\ntargets: {A: {positive_below: forty}}\ncalls: [{when: {A: positive}, call: p, report: r}]\n",
     "record 'targets.A.positive_below'"),
    ("id: x\nversion: 1\ntargets: {A: {positive_below: 40}}\ncalls: [{when: {A: maybe}, call: p, report: r}]\n",
     "unknown outcome 'maybe'"),
    ("id: x\nversion: 1\ntargets: {A: {positive_below: 40}}\ncalls: [{when: {A: positive}, call: p, report: r}]\n"
     "contols: {}\n", "unknown key"),
    ("id: x\nversion: 1\ntargets: {A: {positive_below: 40, aliases: [B]}, B: {positive_below: 40}}\n"
     "calls: [{when: {A: positive}, call: p, report: r}]\n", "alias 'B' also belongs"),
    ("id: x\nversion: 1\ntargets: [A\n", "not valid YAML"),
])
def test_bad_rule_files_are_refused_with_the_key(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_ruleset(path)
    assert "bad.yaml" in str(err.value) and needle in str(err.value)


def test_unknown_rule_set_name_lists_the_shipped_ones():
    with pytest.raises(InputError, match="cdc-2019-ncov"):
        load_ruleset("cdc-2020")


def test_rule_files_cite_their_sources_and_mark_lab_defaults():
    folder = Path(__file__).resolve().parents[1] / "src" / "oligolab" / "lab" / "rulesets"
    for f in folder.glob("*.yaml"):
        text = f.read_text()
        assert "LAB-CONFIGURABLE DEFAULT" in text
        assert "Source" in text or "Sources" in text


def test_rule_set_from_stored_yaml_matches_the_file(tmp_path):
    """A service's stored YAML (with `extends`) builds the same rule set as the same text in a file."""
    from oligolab.lab.rules import ruleset_from_yaml

    text = "extends: cdc-2019-ncov\nid: cdc-strict\nversion: '1.0.0'\ntargets:\n  N1: {review_above: 35.0}\n"
    path = tmp_path / "cdc-strict.yaml"
    path.write_text(text)
    from_file, stored = load_ruleset(path), ruleset_from_yaml(text, "stored")
    assert stored.sha256 == from_file.sha256 and stored.targets["N1"].review_above == 35.0
    assert stored.calls == from_file.calls and len(stored.calls) == 5
    with pytest.raises(InputError, match="stored, line 1: not valid YAML"):
        ruleset_from_yaml("targets: [unclosed", "stored")
