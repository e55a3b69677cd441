"""`oligolab sirna score`: the approved drugs' published duplexes scored as themselves (givosiran with its
mismatch), the same figures as the design path for perfect matches, modified notation decoded, malformed duplex
files refused in one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import DATA
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from oligolab.cli import _register, app
from oligolab.errors import InputError
from oligolab.sirna import (
    SirnaInputs,
    SirnaOptions,
    decode_notation,
    design_targets,
    score_duplexes,
)
from oligolab.sirna.duplexes import read_duplexes

TARGETS = DATA / "rnai-targets" / "human-rnai-target-mrnas.fasta"
DRUGS = DATA / "sirna-drugs" / "approved-sirnas.tsv"
GENES = ["TTR", "ALAS1", "HAO1", "PCSK9", "SERPINC1"]

_register()
runner = CliRunner()


@pytest.fixture(scope="module")
def scored():
    results = score_duplexes(SirnaInputs(TARGETS, [TARGETS]), DRUGS, SirnaOptions(genes=GENES))
    return {r.info["target"]["gene"]: r.table.set_index("name") for r in results}


def test_every_drug_with_a_guide_is_scored_on_its_target(scored):
    placed = {gene: sorted(t.index) for gene, t in scored.items()}
    assert placed == {"TTR": ["patisiran", "vutrisiran"], "ALAS1": ["givosiran"], "HAO1": ["lumasiran"],
                      "PCSK9": ["inclisiran"], "SERPINC1": ["fitusiran"]}
    sites = {name: int(t.loc[name, "position"]) for t in scored.values() for name in t.index}
    # the mapped sites of data/sirna-drugs/SOURCE.md (core site of the guide's nt 1-19)
    assert sites == {"patisiran": 518, "vutrisiran": 509, "givosiran": 843, "lumasiran": 1357,
                     "inclisiran": 3533, "fitusiran": 811}


def test_givosiran_is_scored_as_the_drug(scored):
    """Givosiran's guide starts with U where the transcript needs a G-pairing base: position 1 faces C. The
    mismatch is reported at its position, costs nothing (guide nt 1 does not pair in Argonaute), and the
    knock-down is predicted for the drug's own guide (5'-U), not for the perfect match."""
    row = scored["ALAS1"].loc["givosiran"]
    assert row.target_pairing == "1:U·C mismatch"
    assert row.guide == "UAAGAUGAGACACUCUUUCUGGU"
    perfect = design_targets(SirnaInputs(TARGETS, [TARGETS]), SirnaOptions(genes=["ALAS1"]))[0].table \
        .set_index("position").loc[843]
    assert perfect.guide[0] == "G" and perfect.guide[1:] == row.guide[1:]
    assert row.predicted_efficacy != perfect.predicted_efficacy
    assert "extrapolated" in row["flags"] and row.predicted_efficacy > 0.5


@pytest.mark.parametrize("gene, pattern, drug", [("TTR", "galnac-full", "vutrisiran"),
                                                 ("TTR", "lnp-light", "patisiran"),
                                                 ("HAO1", "galnac-full", "lumasiran")])
def test_perfect_matches_score_as_in_the_design(gene, pattern, drug):
    """A perfectly matched drug duplex whose strands are the design's (same layout) gets the design's
    efficacy, seed figures, flags and score."""
    inputs = SirnaInputs(TARGETS, [TARGETS])
    design = design_targets(inputs, SirnaOptions(genes=[gene], pattern=pattern))[0].table
    given_ = score_duplexes(inputs, DRUGS, SirnaOptions(genes=[gene]))[0].table.set_index("name").loc[drug]
    row = design.set_index("position").loc[given_.position]
    assert row.guide == given_.guide and row.passenger == given_.passenger
    for col in ("predicted_efficacy", "accessibility", "guide_seed_burden", "guide_offtargets_2mm", "score", "flags"):
        assert row[col] == given_[col], col
    assert given_.target_pairing in ("", None) or pd.isna(given_.target_pairing)


def test_modified_notation_is_decoded(tmp_path):
    """Lumasiran written in its WHO INN notation scores as the plain-letter duplex."""
    drugs = pd.read_csv(DRUGS, sep="\t")
    luma = drugs[drugs.drug == "lumasiran"].set_index("strand")
    for name, col in (("mod.csv", "modified_notation"), ("plain.csv", "sequence")):
        pd.DataFrame({"name": ["luma"], "guide": [luma.loc["antisense", col]],
                      "passenger": [luma.loc["sense", col]]}).to_csv(tmp_path / name, index=False)
    a, b = (score_duplexes(SirnaInputs(TARGETS), tmp_path / n, SirnaOptions(genes=["HAO1"]))[0].table
            for n in ("mod.csv", "plain.csv"))
    assert a.predicted_efficacy[0] == b.predicted_efficacy[0] and a.position[0] == b.position[0] == 1357
    assert a.guide_modified[0] == "usAfsuauUfuCfCfaggaUfgAfaagucscsa" and b.guide_modified[0] in ("", None) or \
        pd.isna(b.guide_modified[0])
    d = decode_notation("(vinu)sUfsaacCfAfCfaguaUfgAfccgsusc")
    assert d.vinylphosphonate and d.bases.startswith("UUAAC") and d.phosphorothioates == 4
    assert decode_notation("csasg(Tgn)aa-GalNAc3").sugar == ["ome"] * 3 + ["gna", "ome", "ome"]


def test_score_command_and_fasta_duplexes(tmp_path):
    fasta = tmp_path / "d.fa"
    fasta.write_text(">vutri_AS\nusCfsuugGfuuAfcaugAfaAfucccasusc\n>vutri_S\nUGGGAUUUCAUGUAACCAAGA\n"
                     ">other_AS\nUUUUUUUUUUUUUUUUUUUUUUU\n")
    out = tmp_path / "out"
    r = runner.invoke(app, ["sirna", "score", str(fasta), "--target", str(TARGETS), "--gene", "TTR", "--out",
                            str(out)])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(out / "candidates.csv")
    assert list(table.name) == ["vutri"] and table.position[0] == 509
    summary = json.loads((out / "summary.json").read_text())
    assert summary["not_on_any_target"] == ["other"]
    assert "does NOT account" in summary["prediction_scope"]


@pytest.mark.parametrize("name, text, contains", [
    ("d.csv", "name,guide,passenger\nx,ACGUXACGUACGUACGUACGU,\n", "cannot read 'XACGUACG'"),
    ("d.csv", "name,guide,passenger\nx,ACGUACGU,\n", "has 8 nt"),
    ("d.csv", "name,passenger\nx,ACGUACGUACGUACGUACGUA\n", "needs a guide (antisense) column"),
    ("d.csv", "name,guide\nx,UCUUGGUUACAUGAAAUCCCAUC\nx,UCUUGGUUACAUGAAAUCCCAUC\n", "given twice"),
    ("d.csv", "name,guide\n", "no duplex in the file"),
    ("d.csv", "name,guide\nx,\n", "has no guide strand"),
    ("d.tsv", "drug\tstrand\tsequence\nx\tguide\tUCUUGGUUACAUGAAAUCCCAUC\n", "is not sense or antisense"),
    ("d.tsv", "drug\tstrand\tsequence\tmodified_notation\nx\tantisense\tUCUUGGUUACAUGAAAUCCCAUC\tusAfsuauUfuCfCfaggaU"
              "fgAfaagucscsa\n", "notation bases"),
    ("d.fa", ">x_AS\nUCUUGGUUACAUGAAAUCCCAUC\n>x_AS\nUCUUGGUUACAUGAAAUCCCAUC\n", "two guide records"),
    ("d.fa", ">x_S\nUCUUGGUUACAUGAAAUCCCA\n", "no guide record"),
    ("d.fa", ">x\nUCUUGGUUACAUGAAAUCCCA\n", "neither a guide nor a passenger"),
    ("d.fa", "UCUUGG\n>x_AS\nUCUUGGUUACAUGAAAUCCCAUC\n", "sequence before the first"),
    ("d.fa", "", "file is empty"),
])
def test_malformed_duplex_files_refused(tmp_path, name, text, contains):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        read_duplexes(path)
    msg = str(exc.value)
    assert contains in msg and "\n" not in msg and "(fix:" in msg, msg


def test_duplexes_off_the_target_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("name,guide\nx,UUUUUUUUUUUUUUUUUUUUUUU\n")
    r = runner.invoke(app, ["sirna", "score", str(path), "--target", str(TARGETS), "--gene", "TTR", "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 2 and "no duplex pairs with NM_000371.4" in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()


@pytest.mark.fuzz
@given(text=st.lists(st.sampled_from(["name", "guide", "passenger", "drug", "strand", "sequence", "sense",
                                      "antisense", ">x_AS", ">x_S", ">y", "UCUUGGUUACAUGAAAUCCCAUC", "usCfsuug",
                                      "Gfuu", "(Tgn)", "(vinu)", "dT", "-GalNAc3", "XYZ!!", ",", "\t", "\n", '"', " ",
                                      "\x00", "(", ")"]), max_size=60).map("".join))
def test_fuzz_read_duplexes(tmp_path, text):
    path = tmp_path / "fuzz.csv"
    path.write_text(text)
    try:
        read_duplexes(path)
    except InputError as exc:
        assert "\n" not in str(exc)
