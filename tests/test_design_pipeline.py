"""`oligolab design` end to end on real data, small: design on a subset of pre-Omicron Pango lineages in a
region, then `oligolab check` the designs on those genomes, on a subset of Omicron lineages and against the
shipped near neighbours. Nothing here is a stored result: every expectation is recomputed from the inputs."""

from __future__ import annotations

import gzip

import pandas as pd
import primer3
import pytest

from oligolab.check import CheckInputs, CheckOptions, run_check
from oligolab.design import DesignInputs, DesignOptions, run_design
from oligolab.knowledge import amplification, get_enzyme
from oligolab.lineages import Lineages
from oligolab.sequences import read_fasta, reverse_complement

from conftest import ALIAS_KEY, ANNOTATION, NEIGHBOURS, PANGO, REFERENCE

PUBLISHED = PANGO.parents[1] / "published-crispr-assays"


@pytest.fixture(scope="module")
def subsets(tmp_path_factory):
    """Every 10th pre-Omicron lineage (design set) and every 25th B.1.1.529 descendant (hold-out), real
    consensus genomes written as gzip FASTA."""
    lin = Lineages(ALIAS_KEY)
    d = tmp_path_factory.mktemp("design-subsets")
    pre, post = d / "pre.fasta.gz", d / "post.fasta.gz"
    counts = [0, 0]
    kept = [0, 0]
    with gzip.open(pre, "wt") as a, gzip.open(post, "wt") as b:
        for rec in read_fasta(PANGO):
            held = lin.has_ancestor(rec.id, "B.1.1.529")
            counts[held] += 1
            if counts[held] % (25 if held else 10) == 1:
                (b if held else a).write(f">{rec.id}\n{rec.text()}\n")
                kept[held] += 1
    return pre, post, kept


def _design(subsets, tmp_path_factory, enzyme, chem, region):
    pre, _, _ = subsets
    out = tmp_path_factory.mktemp(f"design-{enzyme}-{chem}")
    res = run_design(DesignInputs([pre], reference=REFERENCE, annotation=ANNOTATION, alias_key=ALIAS_KEY,
                                  off_targets=[NEIGHBOURS]),
                     out, DesignOptions(enzyme=enzyme, amplification=chem, n_assays=2, region=region))
    return res, out


@pytest.fixture(scope="module")
def lamp(subsets, tmp_path_factory):
    return _design(subsets, tmp_path_factory, "LbCas12a", "lamp", "N")


@pytest.fixture(scope="module")
def rpa(subsets, tmp_path_factory):
    return _design(subsets, tmp_path_factory, "LwaCas13a", "rpa", "26000-29800")


def _check(tmp_path_factory, assays, genomes, off_targets=()):
    out = tmp_path_factory.mktemp("check")
    run_check(CheckInputs(list(assays), [genomes], None, REFERENCE, ANNOTATION, ALIAS_KEY, list(off_targets)),
              out, CheckOptions())
    return out


@pytest.mark.parametrize("which", ["lamp", "rpa"])
def test_check_on_the_design_output_agrees_with_the_design(which, request, subsets, tmp_path_factory):
    """The coverage a design reports is what `oligolab check` says about its assays.tsv, genome by genome."""
    res, out = request.getfixturevalue(which)
    assert len(res.assays) >= 1
    chk = _check(tmp_path_factory, [out / "assays.tsv"], subsets[0])
    summary = pd.read_csv(chk / "assay_summary.tsv", sep="\t").set_index("assay")
    designed = pd.read_csv(out / "design_summary.tsv", sep="\t").set_index("assay")
    for name, row in designed.iterrows():
        for col in ("detected", "at_risk", "not_detected", "no_data"):
            assert summary.loc[name, col] == row[col], (name, col)
    calls = pd.read_csv(chk / "assay_calls.tsv", sep="\t")[["genome", "assay", "call"]]
    mine = pd.read_csv(out / "genome_calls.tsv", sep="\t")[["genome", "assay", "call"]]
    merged = mine.merge(calls, on=["genome", "assay"], suffixes=("_design", "_check"))
    assert len(merged) == len(mine) and (merged.call_design == merged.call_check).all()
    # the designs detect every genome they were designed on
    assert (designed["detected"] == designed["genomes"]).all()


def _genomes(path):
    return [r.text() for r in read_fasta(path)]


def test_cas12a_guides_sit_behind_a_tttv_pam(lamp, subsets):
    res, out = lamp
    enzyme = get_enzyme("LbCas12a")
    genomes = _genomes(subsets[0])
    for a in res.assays:
        detected = set()
        for g in a.guides:
            found = 0
            for k, text in enumerate(genomes):
                for strand_text in (text, reverse_complement(text)):
                    i = strand_text.find(g.sequence)
                    if i >= 4:
                        found += 1
                        detected.add(k)
                        assert enzyme.motif_matches(strand_text[i - 4:i]), (g.name, strand_text[i - 4:i])
            assert found >= 1, g.name
        # every design genome carries an exact protospacer (PAM-strand spacer) of at least one of the guides
        assert len(detected) == len(genomes)


def test_cas13a_guides_avoid_a_g_flanking_site_and_pair_with_the_t7_transcript(rpa, subsets):
    res, out = rpa
    genomes = _genomes(subsets[0])
    t7 = amplification()["tails"]["T7"]
    for a in res.assays:
        fwd = next(o for o in a.oligos if o.role == "forward")
        assert fwd.tail == t7 and fwd.full_sequence.startswith(t7)
        for g in a.guides:
            target = reverse_complement(g.sequence)  # the protospacer on the RNA the spacer pairs with
            for text in genomes[:20]:
                strand_text = text if fwd.strand == 0 else reverse_complement(text)  # the transcript's sense
                i = strand_text.find(target)
                assert i >= 0, g.name
                assert strand_text[i + len(target)] != "G"  # protospacer flanking site (3' on the target)


def test_rpa_primers_meet_length_and_amplicon_constraints(rpa):
    res, _ = rpa
    table = amplification()["rpa"]["design"]
    lo, hi = table["primer_length_nt"]
    a_lo, a_hi = table["amplicon_nt"]
    for a in res.assays:
        primers = a.primers
        assert {p.role for p in primers} == {"forward", "reverse"}
        for p in primers:
            assert lo <= len(p.sequence) <= hi
            gc = (p.sequence.count("G") + p.sequence.count("C")) / len(p.sequence)
            assert table["gc_fraction"][0] <= gc <= table["gc_fraction"][1]
        start = min(p.start for p in primers)
        end = max(p.end for p in primers)
        assert a_lo <= end - start <= a_hi
        for g in a.guides:  # guides between the primers, not overlapping them
            assert all(g.end <= p.start or g.start >= p.end for p in primers)
            assert start <= g.start and g.end <= end


def test_lamp_primers_meet_layout_and_tm_constraints(lamp):
    res, _ = lamp
    t = amplification()["lamp"]["design"]
    c = t["conditions"]
    kw = dict(mv_conc=c["monovalent_mM"], dv_conc=c["divalent_mM"], dntp_conc=c["dntp_mM"], dna_conc=c["oligo_nM"])
    for a in res.assays:
        by = {o.role: o for o in a.oligos}
        fip, bip = by["FIP"], by["BIP"]
        (f1, f2), (b1, b2) = fip.part_sites, bip.part_sites
        f3, b3 = (by["F3"].start, by["F3"].end), (by["B3"].start, by["B3"].end)
        assert t["gap_outer_nt"][0] <= f2[0] - f3[1] <= t["gap_outer_nt"][1]
        assert t["gap_loop_nt"][0] <= f1[0] - f2[1] <= t["gap_loop_nt"][1]
        assert t["interior_nt"][0] <= b1[0] - f1[1] <= t["interior_nt"][1]
        assert t["gap_loop_nt"][0] <= b2[0] - b1[1] <= t["gap_loop_nt"][1]
        assert t["gap_outer_nt"][0] <= b3[0] - b2[1] <= t["gap_outer_nt"][1]
        assert t["f2_b2_nt"][0] <= b2[1] - f2[0] <= t["f2_b2_nt"][1]
        for g in a.guides:
            assert f1[1] <= g.start and g.end <= b1[0]
        for seq, rng in ((fip.parts[0], t["tm_inner_C"]), (bip.parts[0], t["tm_inner_C"]),
                         (fip.parts[1], t["tm_outer_C"]), (bip.parts[1], t["tm_outer_C"]),
                         (by["F3"].sequence, t["tm_outer_C"]), (by["B3"].sequence, t["tm_outer_C"])):
            assert rng[0] <= primer3.calc_tm(seq, **kw) <= rng[1]
            assert t["primer_length_nt"][0] <= len(seq) <= t["primer_length_nt"][1]
        for role in ("LF", "LB"):
            if role in by:
                assert t["tm_loop_C"][0] <= primer3.calc_tm(by[role].sequence, **kw) <= t["tm_loop_C"][1]


def test_no_offtarget_site_or_amplicon_in_the_near_neighbours(lamp, rpa, subsets, tmp_path_factory):
    """SARS-CoV-2-specific designs: the check finds no guide site (binds/degraded) and no amplicon in
    SARS-CoV-1, MERS-CoV or the seasonal coronaviruses."""
    chk = _check(tmp_path_factory, [lamp[1] / "assays.tsv", rpa[1] / "assays.tsv"], subsets[0], [NEIGHBOURS])
    ex = pd.read_csv(chk / "exclusivity_assays.tsv", sep="\t")
    assert ex.empty, ex
    sites = pd.read_csv(chk / "exclusivity_sites.tsv", sep="\t")
    guides = sites[(sites.role == "crRNA") & sites.call.isin(["binds", "degraded"])]
    assert guides.empty, guides
    for res in (lamp[0], rpa[0]):
        assert all(a.scores["specificity"]["specific"] for a in res.assays)


def test_holdout_subset_checked_beside_detectr(lamp, subsets, tmp_path_factory):
    """Temporal hold-out, small: the N-gene LAMP designs made on pre-Omicron lineages, checked on Omicron
    lineages together with the published DETECTR N-gene assay (same region, same chemistry)."""
    chk = _check(tmp_path_factory, [lamp[1] / "assays.tsv", PUBLISHED / "detectr-broughton-2020.tsv"], subsets[1])
    summary = pd.read_csv(chk / "assay_summary.tsv", sep="\t").set_index("assay")
    n_post = subsets[2][1]
    assert (summary["genomes"] == n_post).all()
    best = max(summary.loc[a.name, "detected"] + summary.loc[a.name, "at_risk"] for a in lamp[0].assays)
    detectr = summary.loc["DETECTR (Broughton 2020) N gene"]
    assert best >= detectr["detected"] + detectr["at_risk"]


def test_order_sheet_has_full_crrnas_ivt_templates_and_primers(lamp, rpa):
    ivt = amplification()["ivt"]
    for res, out in (lamp, rpa):
        sheet = pd.read_csv(out / "order_sheet.tsv", sep="\t")
        enzyme = res.enzyme
        for a in res.assays:
            for g in a.guides:
                rna = sheet[(sheet["item"] == g.name)].iloc[0]["sequence_5to3"]
                assert rna == (enzyme.direct_repeat + g.sequence).replace("T", "U")
                template = sheet[sheet["item"] == g.name + "-IVT"].iloc[0]["sequence_5to3"]
                assert reverse_complement(template) == ivt["promoter_transcribed"] + rna.replace("U", "T")
            for o in a.primers:
                row = sheet[sheet["item"] == o.name].iloc[0]
                expected = o.tail + (o.sequence if o.parts is None else o.parts[0] + o.parts[1])
                assert row["sequence_5to3"] == expected and row["length_nt"] == len(expected)
        assert (sheet["sequence_5to3"] == ivt["promoter_top_strand"]).any()
        html = (out / "report.html").read_text()
        assert "Specificity" in html and "Human background is not screened" in html
    assert "heuristic" in (rpa[1] / "report.html").read_text().lower()
