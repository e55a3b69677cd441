"""`oligolab design` end to end on real data, small: design on a subset of pre-Omicron Pango lineages in a
region, then `oligolab check` the designs on those genomes, on a subset of Omicron lineages and against the
shipped near neighbours. Nothing here is a stored result: every expectation is recomputed from the inputs."""

from __future__ import annotations

import dataclasses
import gzip

import pandas as pd
import primer3
import pytest

from oligolab.check import CheckInputs, CheckOptions, run_check
from oligolab.design import DesignInputs, DesignOptions, design
from oligolab.design.outputs import write_outputs
from oligolab.design.order import COLUMNS, order_sheet
from oligolab.knowledge import amplification, get_enzyme, load_enzymes
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
    res = design(DesignInputs([pre], reference=REFERENCE, annotation=ANNOTATION, alias_key=ALIAS_KEY,
                              off_targets=[NEIGHBOURS]), DesignOptions(enzyme=enzyme, amplification=chem, n_assays=2,
                                                                        region=region))
    write_outputs(res, out)
    return res, out


@pytest.fixture(scope="module")
def lamp(subsets, tmp_path_factory):
    return _design(subsets, tmp_path_factory, "LbCas12a", "lamp", "N")


@pytest.fixture(scope="module")
def rpa(subsets, tmp_path_factory):
    return _design(subsets, tmp_path_factory, "LwaCas13a", "rpa", "26000-29800")


@pytest.fixture(scope="module")
def cas12b(subsets, tmp_path_factory):
    """A Cas12b family design (an enzyme added as data) with PCR, on the shipped genomes."""
    return _design(subsets, tmp_path_factory, "AacCas12b", "pcr", "N")


def _check(tmp_path_factory, assays, genomes, off_targets=()):
    out = tmp_path_factory.mktemp("check")
    run_check(CheckInputs(list(assays), [genomes], None, REFERENCE, ANNOTATION, ALIAS_KEY, list(off_targets)),
              out, CheckOptions())
    return out


@pytest.mark.parametrize("which", ["lamp", "rpa", "cas12b"])
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
    calls = pd.read_parquet(chk / "assay_calls")[["genome", "assay", "call"]].astype(str)
    mine = pd.read_csv(out / "genome_calls.tsv", sep="\t")[["genome", "assay", "call"]]
    merged = mine.merge(calls, on=["genome", "assay"], suffixes=("_design", "_check"))
    assert len(merged) == len(mine) and (merged.call_design == merged.call_check).all()
    # the designs detect every genome they were designed on
    assert (designed["detected"] == designed["genomes"]).all()


def _genomes(path):
    return [r.text() for r in read_fasta(path)]


@pytest.mark.parametrize("which", ["lamp", "cas12b"])
def test_type_v_guides_sit_behind_their_pam(which, request, subsets):
    """LbCas12a guides behind TTTV, AacCas12b guides behind TTN (as their enzyme files say)."""
    res, out = request.getfixturevalue(which)
    enzyme = res.enzyme
    n = len(enzyme.motif)
    assert enzyme.motif == {"lamp": "TTTV", "cas12b": "TTN"}[which]
    genomes = _genomes(subsets[0])
    for a in res.assays:
        detected = set()
        for g in a.guides:
            found = 0
            for k, text in enumerate(genomes):
                for strand_text in (text, reverse_complement(text)):
                    i = strand_text.find(g.sequence)
                    if i >= n and enzyme.motif_matches(strand_text[i - n:i]):
                        found += 1
                        detected.add(k)
            assert found >= 1, g.name  # the guide sits behind a valid PAM in design genomes
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


def test_order_sheet_has_full_guides_ivt_templates_primers_and_controls(lamp, rpa):
    ivt = amplification()["ivt"]
    for res, out in (lamp, rpa):
        sheet = pd.read_csv(out / "order_sheet.tsv", sep="\t", keep_default_na=False)
        assert list(sheet.columns) == COLUMNS
        enzyme = res.enzyme
        for a in res.assays:
            for g in a.guides:
                row = sheet[(sheet["item"] == g.name)].iloc[0]
                assert row["sequence_5to3"] == (enzyme.direct_repeat + g.sequence).replace("T", "U")
                assert row["vendor_sequence"] == "".join("r" + b for b in row["sequence_5to3"])
                template = sheet[sheet["item"] == g.name + "-IVT"].iloc[0]["sequence_5to3"]
                expected = ivt["promoter_transcribed"] + row["sequence_5to3"].replace("U", "T")
                assert reverse_complement(template) == expected
            for o in a.primers:
                row = sheet[sheet["item"] == o.name].iloc[0]
                expected = o.tail + (o.sequence if o.parts is None else o.parts[0] + o.parts[1])
                assert row["sequence_5to3"] == expected and row["length_nt"] == len(expected)
            # positive control: T7 promoter + consensus over the amplicon (every primer site inside), and its RNA
            dna = sheet[sheet["item"] == a.name + "-PC-DNA"].iloc[0]["sequence_5to3"]
            rna = sheet[sheet["item"] == a.name + "-PC-RNA"].iloc[0]["sequence_5to3"]
            t7 = amplification()["tails"]["T7"]
            assert dna.startswith(t7) and rna == dna[len(t7) - 3:].replace("T", "U")
            for o in a.primers:
                core = o.sequence if o.parts is None else o.parts[1]
                assert core in dna or reverse_complement(core) in dna, o.name
        assert (sheet["sequence_5to3"] == ivt["promoter_top_strand"]).any()
        reporters = sheet[sheet["role"] == "reporter"]
        assert len(reporters) == len(enzyme.reporters) and reporters["purification"].eq("HPLC").all()
        html = (out / "report.html").read_text()
        assert "Specificity" in html and "Human background is not screened" in html
    assert "heuristic" in (rpa[1] / "report.html").read_text().lower()


@pytest.mark.parametrize("enzyme_name", sorted(e.name for e in load_enzymes().values()))
@pytest.mark.parametrize("which", ["lamp", "rpa", "cas12b"])
def test_order_sheet_columns_for_every_enzyme_and_chemistry(enzyme_name, which, request):
    """Every enzyme file with every chemistry gives a complete sheet: the columns, a scale and purification by
    length and modification on every orderable row, IDT notation for RNA and reporters, the enzyme's reporters
    and a positive control per assay. (The assays of one real design per chemistry are given each enzyme.)"""
    res, _ = request.getfixturevalue(which)
    enzyme = get_enzyme(enzyme_name)
    assays = [dataclasses.replace(a, enzyme=enzyme) for a in res.assays]
    sheet = order_sheet(assays, res.collection.profile())
    assert list(sheet.columns) == COLUMNS
    orderable = sheet[sheet["kind"] != "reporter (not shipped)"]
    assert orderable["scale"].str.len().gt(0).all() and orderable["purification"].str.len().gt(0).all()
    for row in orderable.itertuples():
        if row.kind.startswith("DNA oligo"):
            assert row.vendor_sequence == row.sequence_5to3
            assert row.purification == ("standard desalting" if row.length_nt <= 40 else "PAGE"), row
        elif row.kind.startswith("RNA oligo"):
            assert row.vendor_sequence == "".join("r" + b for b in row.sequence_5to3)
            assert row.purification.startswith("HPLC") or row.length_nt > 80
        elif row.role == "reporter":
            assert row.vendor_sequence.startswith("/56-FAM/") and row.vendor_sequence.endswith("/3IABkFQ/")
            assert ("rU" in row.vendor_sequence) == (enzyme.collateral == "ssRNA")
    assert len(sheet[sheet["role"] == "reporter"]) == max(1, len(enzyme.reporters))
    roles = set(sheet["role"])
    expected = {"lamp": {"F3", "B3", "FIP", "BIP"}, "rpa": {"forward", "reverse"}, "pcr": {"forward", "reverse"}}
    assert expected[res.options.amplification] <= roles
    n_guides = sum(len(a.guides) for a in assays)
    assert (sheet["role"] == "crRNA").sum() == n_guides
    assert (sheet["role"] == "crRNA template").sum() == (n_guides if enzyme.direct_repeat else 0)
    for a in assays:
        assert {a.name + "-PC-DNA", a.name + "-PC-RNA"} <= set(sheet["item"])
        if a.chemistry == "lamp":
            loops = [o for o in a.primers if o.role in ("LF", "LB")]
            assert len(loops) == 2 or any("loop primer" in n for n in a.notes)


def test_same_files_under_different_hash_seeds(subsets, tmp_path):
    """A design is a function of its inputs and options alone: two runs under different PYTHONHASHSEED write
    byte-identical files (report and manifest included); the runs' umasks (022, 027) set the modes only."""
    import os
    import subprocess
    import sys

    pre, _, _ = subsets
    outs = []
    for seed, umask in (("1", 0o022), ("4242", 0o027)):
        out = tmp_path / f"seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "oligolab.cli", "design", "-g", str(pre), "-r", str(REFERENCE),
                        "--annotation", str(ANNOTATION), "--alias-key", str(ALIAS_KEY), "--off-target",
                        str(NEIGHBOURS), "-e", "LbCas12a", "-A", "lamp", "--region", "N", "-n", "2", "-o", str(out)],
                       check=True, env=env, capture_output=True, preexec_fn=lambda umask=umask: os.umask(umask))
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir()) and "report.html" in names
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    for out, folder_mode, file_mode in ((outs[0], 0o755, 0o644), (outs[1], 0o750, 0o640)):
        assert out.stat().st_mode & 0o777 == folder_mode
        assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {oct(file_mode)}


SARBECO = PANGO.parents[1] / "sarbecoviruses-pre2019" / "sarbecoviruses-pre2019-49.fasta.xz"


@pytest.fixture(scope="module")
def sarbeco_designs():
    """LwaCas13a + RPA on the 49 pre-2019 sarbecoviruses (diverse: one guide rarely survives everything), in the
    N gene region of SARS-CoV-1, with one guide and with up to five."""
    out = {}
    for k in (1, 5):
        out[k] = design(DesignInputs([SARBECO]), DesignOptions(enzyme="LwaCas13a", amplification="rpa", n_assays=3,
                                                               max_guides=k, region="28000-29700"))
    return out


def test_max_guides_buys_robustness_where_one_guide_is_fragile(sarbeco_designs):
    one, five = sarbeco_designs[1], sarbeco_designs[5]
    assert all(len(a.guides) == 1 for a in one.assays)
    assert any(len(a.guides) > 1 for a in five.assays)
    assert len(five.assays) == 3 and len(one.assays) == 3  # the number asked for
    best = lambda res: max(a.prescore["guide_survival"] for a in res.assays)  # noqa: E731
    assert best(five) > best(one)
    for res in (one, five):  # survival is a probability and the ranking follows the expected detection
        keys = [a.scores["check"]["detected"] / res.collection.n * a.prescore["survival"] for a in res.assays]
        assert all(0.0 < a.prescore["survival"] <= 1.0 for a in res.assays)
        assert keys == sorted(keys, reverse=True) or len({round(k, 4) for k in keys}) < len(keys)


def test_rates_are_learnt_from_the_collection(sarbeco_designs):
    cons = sarbeco_designs[5].conservation
    table = cons.table
    assert (table[1:] >= table[:-1]).all() and table[0] < table[1]  # varying columns vary again, invariant less
    assert 0.0 < cons.novel < 0.2
