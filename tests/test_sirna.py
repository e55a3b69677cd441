"""`oligolab sirna` end to end on the shipped real transcripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
from conftest import DATA
from typer.testing import CliRunner

from oligolab.cli import _register, app
from oligolab.engine import PatternSet, SeedEngine, pack_batch
from oligolab.sequences import encode, reverse_complement
from oligolab.sirna import (
    SirnaInputs,
    SirnaOptions,
    design_sirnas,
    duplex_strands,
    load_patterns,
    modified_notation,
    read_transcripts,
)

TARGETS = DATA / "rnai-targets" / "human-rnai-target-mrnas.fasta"
MOUSE = DATA / "rnai-targets" / "orthologs" / "mouse-ttr.fasta"
DRUGS = DATA / "sirna-drugs" / "approved-sirnas.tsv"
MIRNAS = DATA / "sirna-drugs" / "human-mature-mirnas.tsv"
PCSK9_VARIANTS = DATA / "rnai-targets" / "variants" / "pcsk9-gnomad-v3.1.2-grch38.tsv.xz"

_register()
runner = CliRunner()


@pytest.fixture(scope="module")
def ttr(tmp_path_factory):
    out = tmp_path_factory.mktemp("sirna-ttr")
    result = runner.invoke(app, ["sirna", "--target", str(TARGETS), "--target-id", "NM_000371.4",
                                 "--off-target", str(TARGETS), "--ortholog", str(MOUSE), "--mirnas", str(MIRNAS),
                                 "--known", str(DRUGS), "--top", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_every_site_of_ttr_is_ranked(ttr):
    table = pd.read_csv(ttr / "candidates.csv")
    ttr_len = len(read_transcripts(TARGETS)[0].seq)
    assert ttr_len == 616
    assert len(table) == ttr_len - 19 + 1 - 4  # 21/23 layout: the guide overhang needs 4 nt upstream
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table["score"].is_monotonic_decreasing or table["hard_fail"].any()
    assert table["predicted_efficacy"].between(0, 1.2).all()
    assert table["predicted_efficacy"].std() > 0.01  # the model discriminates between sites
    top = pd.read_csv(ttr / "top.csv")
    assert len(top) == 20 and not top["hard_fail"].any()


def test_approved_drug_sites_are_found_and_ranked(ttr):
    """Patisiran and vutrisiran target TTR at 518 and 509 (mapped from their WHO INN sequences): the design
    holds a candidate whose guide core is the drug's guide core, and reports where it ranks."""
    summary = json.loads((ttr / "summary.json").read_text())
    known = {k["name"]: k for k in summary["known"]}
    assert known["patisiran"]["position"] == 518 and known["vutrisiran"]["position"] == 509
    table = pd.read_csv(ttr / "candidates.csv").set_index("position")
    drugs = pd.read_csv(DRUGS, sep="\t")
    pati = drugs[(drugs.drug == "patisiran") & (drugs.strand == "antisense")].sequence.iloc[0]
    # in the 21/23 layout the guide's first 19 nt are the core that pairs with the site
    assert table.loc[518, "guide"][:19] == pati[:19]
    for k in known.values():
        assert 1 <= k["rank"] <= k["of"]


def test_strands_and_chemistry_notation(ttr):
    order = pd.read_csv(ttr / "order_sheet.csv")
    assert len(order) == 2 * 20
    guide = order[order.strand == "antisense (guide)"].iloc[0]
    sense = order[order.strand == "sense (passenger)"].iloc[0]
    assert guide.length_nt == 23 and sense.length_nt == 21  # galnac-full layout
    mod = guide.modified_5to3
    assert mod.count("s") == 4 and sense.modified_5to3.count("s") == 2
    assert sense.modified_5to3.endswith("-GalNAc3")
    residues = re.findall(r"[ACGU]f|[acgu]|[ACGU]|dT", mod)
    assert len(residues) == 23
    fluoro = [i + 1 for i, r in enumerate(residues) if r.endswith("f")]
    assert fluoro == load_patterns()["galnac-full"]["guide_fluoro"]
    # guide pairs with the sense strand over 21 nt and overhangs 2 nt at its 3' end
    g = guide.sequence_5to3.replace("U", "T")
    s = sense.sequence_5to3.replace("U", "T")
    assert reverse_complement(g)[2:] == s


def test_classic_layout_and_patisiran_like_pattern():
    ttr_seq = read_transcripts(TARGETS)[0].seq
    d = duplex_strands(ttr_seq, 517, "19+2", "dTdT")
    drugs = pd.read_csv(DRUGS, sep="\t")
    pati = drugs[drugs.drug == "patisiran"].set_index("strand").sequence
    assert d.guide[:19] == pati["antisense"] and d.sense[:19] == pati["sense"]
    notation = modified_notation(d.sense_tokens, "sense", load_patterns()["lnp-light"])
    # the patisiran sense notation of the WHO INN name, reproduced from the pattern data
    assert notation == drugs[(drugs.drug == "patisiran") & (drugs.strand == "sense")].modified_notation.iloc[0]


def test_near_perfect_offtargets_equal_bowtie(tmp_path):
    """Off-target parity: every TTR candidate site (19 nt) against the 22 shipped transcripts, <= 2
    mismatches, both strands: the seed-index engine's hits are bowtie's hits."""
    if shutil.which("bowtie") is None:
        pytest.skip("bowtie 1 not installed (make test installs it)")
    records = read_transcripts(TARGETS, find_cds=False)
    ttr_seq = records[0].seq
    sites = [ttr_seq[p:p + 19] for p in range(len(ttr_seq) - 18)]
    names = [f"s{p + 1}" for p in range(len(sites))]
    ref = tmp_path / "tx.fa"
    ref.write_text("".join(f">{t.id}\n{t.seq}\n" for t in records))
    reads = tmp_path / "sites.fa"
    reads.write_text("".join(f">{n}\n{s}\n" for n, s in zip(names, sites)))
    subprocess.run(["bowtie-build", "-q", str(ref), str(tmp_path / "idx")], check=True)
    out = subprocess.run(["bowtie", "-f", "-v", "2", "-a", "--suppress", "6,7,8", str(tmp_path / "idx"),
                          str(reads)], check=True, capture_output=True, text=True).stdout
    expected = {(ln.split("\t")[0], ln.split("\t")[2], int(ln.split("\t")[3]), ln.split("\t")[1])
                for ln in out.splitlines()}
    engine = SeedEngine(PatternSet.from_oligos(names, sites), 2)
    codes, ends = pack_batch([encode(t.seq) for t in records])
    hits = engine.search_codes(codes, ends)
    engine.close()
    s = engine.sites
    got = {(names[int(s.pattern[x]) // 2], records[int(g)].id, int(p), "+-"[int(s.pattern[x]) % 2])
           for g, p, x in zip(hits.genome, hits.pos, hits.site)}
    assert len(expected) >= len(sites)  # every site at least on TTR itself
    assert got == expected


def test_offtarget_counts_exclude_the_target_gene_and_list_hits(ttr):
    hits = pd.read_csv(ttr / "offtarget_hits.tsv", sep="\t")
    assert "NM_000371.4" not in set(hits.transcript)


def brute_seed_sites(site: str, utrs: list[str], min_dist: int = 15) -> list[int]:
    """8mer, 7mer-m8, 7mer-A1, 6mer sites of the guide seed whose target is site nt 12-18, counted by hand in
    3' UTR strings (a site starts at least ``min_dist`` + 1 nt into the UTR)."""
    s = site[11:18]
    counts = [0, 0, 0, 0]
    for u in utrs:
        for j in range(min_dist + 1, len(u) - 5):
            if u[j:j + 6] != s[1:]:
                continue
            after_a = j + 6 < len(u) and u[j + 6] == "A"
            if u[j - 1] == s[0]:
                counts[0 if after_a else 1] += 1
            else:
                counts[2 if after_a else 3] += 1
    return counts


def test_seed_sites_counted_in_3prime_utrs():
    """Brute force on real transcripts: the 8mer/7mer-m8/7mer-A1/6mer sites of the guide seed in the 3' UTRs
    (after the longest ORF) of the off-target transcripts outside TTR equal the design's counts."""
    res = design_sirnas(SirnaInputs(TARGETS, [TARGETS]), SirnaOptions(target_id="NM_000371.4"))
    utrs = [t.seq[t.cds[1]:] for t in read_transcripts(TARGETS) if t.gene != "TTR"]
    cols = ["guide_seed_8mer", "guide_seed_7mer_m8", "guide_seed_7mer_a1", "guide_seed_6mer"]
    checked = 0
    for row in res.table.sort_values("position").iloc[::10].itertuples():  # 60 sites along the transcript
        assert [getattr(row, c) for c in cols] == brute_seed_sites(row.site, utrs), row.position
        checked += sum(getattr(row, c) for c in cols) > 0
    assert checked >= 15  # many seeds have sites: the comparison is not vacuous


def test_variants_flag_sites_over_common_snps():
    """PCSK9 with gnomAD v3.1.2 (positions on NM_174936.4): rs45448095 at 227 (AF 0.098) flags every site
    covering 227; transcript variants 3-10 of PCSK9 in the same file are counted."""
    res = design_sirnas(SirnaInputs(TARGETS, variants=PCSK9_VARIANTS), SirnaOptions(target_id="NM_174936.4"))
    t = res.table.set_index("position")
    covering = [p for p in t.index if p <= 227 <= p + 18]
    assert covering and all("rs45448095" in t.loc[p, "snps"] for p in covering)
    assert len(res.variants_of_target) == 8
    inclisiran_site = 3533
    assert t.loc[inclisiran_site, "transcript_variants_hit"] == 8  # inclisiran hits all PCSK9 variants


def test_bad_input_one_line(tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n")
    r = runner.invoke(app, ["sirna", "--target", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "bad.fa, line 1" in " ".join(r.output.split())
    r = runner.invoke(app, ["sirna", "--target", str(TARGETS), "--target-id", "NM_999", "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 2 and "no record 'NM_999'" in " ".join(r.output.split())
    r = runner.invoke(app, ["sirna", "--target", str(TARGETS), "--pattern", "nope", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown modification pattern" in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()


def test_vutrisiran_like_pattern_reproduces_the_inn_guide_and_options_apply():
    """The vutrisiran-like pattern writes vutrisiran's WHO INN guide notation on its site; esc-plus puts GNA at
    guide 7; the 5'-vinylphosphonate option writes (vinu); each strand decodes back to its bases."""
    from oligolab.sirna import decode_notation

    drugs = pd.read_csv(DRUGS, sep="\t")
    inn = drugs[(drugs.drug == "vutrisiran") & (drugs.strand == "antisense")].modified_notation.iloc[0]
    d = duplex_strands(read_transcripts(TARGETS)[0].seq, 508, "21/23")
    patterns = load_patterns()
    assert modified_notation(d.guide_tokens, "guide", patterns["vutrisiran-like"]) == inn
    esc = modified_notation(d.guide_tokens, "guide", {**patterns["esc-plus"], "guide_5prime_vp": True})
    decoded = decode_notation(esc)
    assert esc.startswith("(vinu)s") and decoded.sugar[6] == "gna" and decoded.vinylphosphonate
    assert decoded.bases == d.guide


def test_ortholog_species_and_conservation(tmp_path):
    """An ortholog file names its species in the RefSeq-style header; sites it holds without a mismatch list that
    species in conserved_in, sites over a difference count it. (The ortholog here is the human TTR with one
    substitution, a labelled test fixture, not data.)"""
    ttr = read_transcripts(TARGETS)[0].seq
    changed = ttr[:300] + ("A" if ttr[300] != "A" else "C") + ttr[301:]
    ortho = tmp_path / "cyno.fa"
    ortho.write_text(f">XM_TEST.1 Macaca fascicularis transthyretin (TTR), mRNA [TEST FIXTURE]\n{changed}\n")
    table = design_sirnas(SirnaInputs(TARGETS, orthologs=[ortho]), SirnaOptions(target_id="NM_000371.4")).table
    col = "mm_Macaca_fascicularis_XM_TEST.1"
    covering = table[(table.position <= 301) & (table.position + 18 >= 301)]
    elsewhere = table[(table.position > 301) | (table.position + 18 < 301)]
    assert (covering[col] == "1").all() and (elsewhere[col] == "0").all()
    assert (elsewhere.conserved_in == "Macaca_fascicularis").all() and not covering.conserved_in.fillna("").any()
