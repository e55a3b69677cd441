"""The off-target transcriptome: GTF/GFF3 annotations on real data, `oligolab sirna index` (versions and SHA-256
recorded, reused across runs), whole-transcriptome off-targets with CDS/UTR coordinates, several targets per run,
and the seed-effect rule: many 7mer-m8 3' UTR sites move a candidate down the ranking."""

from __future__ import annotations

import hashlib
import json
import lzma
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from oligolab.cli import _register, app
from oligolab.errors import InputError
from oligolab.sirna import SirnaInputs, SirnaOptions, design_targets, load_index
from oligolab.sirna.transcriptome import read_annotation

TX = DATA / "sirna-transcriptome"
ISO_FASTA = TX / "isoformswitchanalyzer-example-isoforms.fasta.gz"
ISO_GTF = TX / "isoformswitchanalyzer-example.gtf.gz"
CHRY = TX / "ensembldb-chrY-ensembl75"
TARGETS = DATA / "rnai-targets" / "human-rnai-target-mrnas.fasta"
MIRBASE = DATA / "sirna-mirnas" / "hsa-mature-mirbase-v22.fa.xz"

_register()
runner = CliRunner()


def ok(result) -> None:
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def iso_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("idx") / "iso-index"
    ok(runner.invoke(app, ["sirna", "index", str(ISO_FASTA), "--annotation", str(ISO_GTF), "--out", str(out)]))
    return out


# ------------------------------------------------------------------------------------------------ annotation

def chry_tables() -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(lzma.open(CHRY / f"{name}.txt.xz"), sep="\t", na_values=["NULL"])
            for name in ("ens_tx", "ens_exon", "ens_tx2exon", "ens_gene")}


def chry_gtf(path: Path, gff3: bool = False) -> dict[str, tuple[int, int | None]]:
    """Write the Ensembl 75 chrY tables as a GTF (or GFF3); return, per protein-coding transcript, its length and
    the 5' UTR length computed independently from the genomic CDS start/end."""
    t = chry_tables()
    genes = t["ens_gene"].set_index("gene_id")
    exons = t["ens_tx2exon"].merge(t["ens_exon"], on="exon_id")
    lines = ["##gff-version 3"] if gff3 else []
    expect = {}
    for tx in t["ens_tx"].itertuples():
        g = genes.loc[tx.gene_id]
        strand = "+" if g.seq_strand == 1 else "-"
        ex = exons[exons.tx_id == tx.tx_id].sort_values("exon_idx")
        attrs = (f'gene_id "{tx.gene_id}"; transcript_id "{tx.tx_id}"; gene_name "{g.gene_name}"; '
                 f'transcript_biotype "{tx.tx_biotype}";')
        if gff3:
            lines.append(f"Y\tens\tmRNA\t{tx.tx_seq_start}\t{tx.tx_seq_end}\t.\t{strand}\t.\t"
                         f"ID=transcript:{tx.tx_id};Parent=gene:{tx.gene_id};transcript_id={tx.tx_id};"
                         f"gene_name={g.gene_name};biotype={tx.tx_biotype}")
        for e in ex.itertuples():
            if gff3:
                lines.append(f"Y\tens\texon\t{e.exon_seq_start}\t{e.exon_seq_end}\t.\t{strand}\t.\t"
                             f"Parent=transcript:{tx.tx_id}")
            else:
                lines.append(f"Y\tens\texon\t{e.exon_seq_start}\t{e.exon_seq_end}\t.\t{strand}\t.\t{attrs}")
            if not pd.isna(tx.tx_cds_seq_start):
                lo, hi = max(e.exon_seq_start, int(tx.tx_cds_seq_start)), min(e.exon_seq_end, int(tx.tx_cds_seq_end))
                if lo <= hi:
                    col9 = f"Parent=transcript:{tx.tx_id}" if gff3 else attrs
                    lines.append(f"Y\tens\tCDS\t{lo}\t{hi}\t.\t{strand}\t0\t{col9}")
        length = int((ex.exon_seq_end - ex.exon_seq_start + 1).sum())
        utr5 = None
        if not pd.isna(tx.tx_cds_seq_start):
            if strand == "+":
                utr5 = int(sum(max(0, min(e, int(tx.tx_cds_seq_start) - 1) - s + 1)
                               for s, e in zip(ex.exon_seq_start, ex.exon_seq_end)))
            else:
                utr5 = int(sum(max(0, e - max(s, int(tx.tx_cds_seq_end) + 1) + 1)
                               for s, e in zip(ex.exon_seq_start, ex.exon_seq_end)))
        expect[tx.tx_id] = (length, utr5)
    path.write_text("\n".join(lines) + "\n")
    return expect


def test_ensembl_chry_annotation_as_gtf_and_gff3(tmp_path):
    """731 Ensembl transcripts (both strands, multi-exon): lengths and 5' UTRs as computed from the genomic
    tables; GTF and GFF3 of the same annotation read the same; gene names and biotypes carried."""
    expect = chry_gtf(tmp_path / "chrY.gtf")
    chry_gtf(tmp_path / "chrY.gff3", gff3=True)
    gtf, gff = read_annotation(tmp_path / "chrY.gtf"), read_annotation(tmp_path / "chrY.gff3")
    assert len(gtf) == len(expect) == 731 and set(gff) == set(gtf)
    coding = 0
    for tid, (length, utr5) in expect.items():
        a, b = gtf[tid], gff[tid]
        assert a.length == b.length == length
        assert a.cds() == b.cds()
        if utr5 is not None:
            coding += 1
            assert a.cds()[0] == utr5, tid
    assert coding >= 150
    kdm5d = [t for t in gtf.values() if t.gene_name == "KDM5D" and t.biotype == "protein_coding"]
    assert kdm5d and kdm5d[0].strand == "-"


def test_real_transcripts_get_their_annotated_cds(iso_index):
    idx = load_index(iso_index)
    t = idx.table
    assert len(t) == 1092 and idx.meta["cds_source"]["annotation"] == 1078
    assert idx.meta["annotation_length_mismatches"] == 0
    coding = t[t.cds_start >= 0]
    seqs = [idx.sequence(i) for i in coding.index]
    assert all(s[a:a + 3] == "ATG" for s, a in zip(seqs, coding.cds_start))
    assert all((b - a) % 3 == 0 for a, b in zip(coding.cds_start, coding.cds_end))
    stops = sum(s[b - 3:b] in ("TAA", "TAG", "TGA") for s, b in zip(seqs, coding.cds_end))
    assert stops == 1027  # the GTF's CDS rows leave the stop codon out; the index adds it where it is one


@pytest.mark.parametrize("text, contains", [
    ("chr1\tx\texon\t10\n", "4 tab-separated columns"),
    ("chr1\tx\texon\tabc\t20\t.\t+\t.\ttranscript_id \"t1\";\n", "are not whole numbers"),
    ("chr1\tx\texon\t30\t20\t.\t+\t.\ttranscript_id \"t1\";\n", "start 30 after end 20"),
    ("chr1\tx\texon\t10\t20\t.\t*\t.\ttranscript_id \"t1\";\n", "strand '*' is not + or -"),
    ("chr1\tx\texon\t10\t20\t.\t+\t.\tgene_id \"g\";\n", "without transcript_id"),
    ("chr1\tx\tgene\t10\t20\t.\t+\t.\tgene_id \"g\";\n", "no transcript with exons"),
])
def test_malformed_annotation_refused(tmp_path, text, contains):
    path = tmp_path / "bad.gtf"
    path.write_text(text)
    with pytest.raises(InputError) as exc:
        read_annotation(path)
    assert contains in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.fuzz
@given(text=st.lists(st.sampled_from(["chr1", "\t", "exon", "CDS", "mRNA", "gene", "10", "20", "-5", "abc", "+",
                                      "-", ".", "transcript_id \"t1\";", "Parent=t1;", "ID=t1", "\n", "##gff-version 3",
                                      "#", "\x00", '"', ";", "="]), max_size=80).map("".join))
def test_fuzz_read_annotation(tmp_path, text):
    path = tmp_path / "fuzz.gtf"
    path.write_text(text)
    try:
        read_annotation(path)
    except InputError as exc:
        assert "\n" not in str(exc)


# --------------------------------------------------------------------------------------------------- index

def test_index_records_sources_and_is_reused(iso_index, tmp_path):
    meta = json.loads((iso_index / "index.json").read_text())
    assert meta["transcripts_files"][0]["sha256"] == hashlib.sha256(ISO_FASTA.read_bytes()).hexdigest()
    assert meta["annotation_file"]["sha256"] == hashlib.sha256(ISO_GTF.read_bytes()).hexdigest()
    assert meta["format"] == 1 and meta["oligolab"]
    manifest = json.loads((iso_index / "manifest.json").read_text())
    assert {"codes.npy", "seeds.npz", "transcripts.parquet", "index.json"} <= set(manifest["files"])
    before = {p.name: p.stat().st_mtime_ns for p in iso_index.iterdir()}
    for run in ("a", "b"):
        ok(runner.invoke(app, ["sirna", "--target", str(TARGETS), "--target-id", "NM_000371.4", "--index",
                               str(iso_index), "--out", str(tmp_path / run)]))
    assert {p.name: p.stat().st_mtime_ns for p in iso_index.iterdir()} == before  # read, never rewritten
    a, b = (json.loads((tmp_path / r / "summary.json").read_text()) for r in ("a", "b"))
    assert a["offtarget"]["sources"] == b["offtarget"]["sources"] == meta["transcripts_files"]
    assert a["offtarget"]["transcripts_examined"] == 1092
    assert (tmp_path / "a" / "candidates.csv").read_bytes() == (tmp_path / "b" / "candidates.csv").read_bytes()


def test_bad_index_refused(tmp_path):
    (tmp_path / "idx").mkdir()
    r = runner.invoke(app, ["sirna", "--target", str(TARGETS), "--index", str(tmp_path / "idx"), "--out",
                            str(tmp_path / "o")])
    assert r.exit_code == 2 and "index lacks" in " ".join(r.output.split())
    r = runner.invoke(app, ["sirna", "index", str(TARGETS), "--annotation", str(DATA / "sirna-drugs" /
                            "approved-sirnas.tsv"), "--out", str(tmp_path / "i2")])
    assert r.exit_code == 2 and "a GTF/GFF line has 9" in " ".join(r.output.split())


def test_offtargets_in_a_real_transcriptome_carry_regions(tmp_path):
    """Off-target FASTA of the real RefSeq set plus the 1,092 annotated transcripts: near-perfect hits name the
    gene and the region of the hit; the target's gene is never its own off-target."""
    idx_dir = tmp_path / "idx"
    ok(runner.invoke(app, ["sirna", "index", str(ISO_FASTA), str(TARGETS), "--annotation", str(ISO_GTF),
                           "--out", str(idx_dir)]))
    res = design_targets(SirnaInputs(TARGETS, index=idx_dir), SirnaOptions(genes=["PCSK9"]))[0]
    hits = res.offtarget_hits
    assert res.target.id == "NM_174936.4"  # the MANE Select transcript of PCSK9
    assert len(res.variants_of_target) == 8
    assert not hits.empty and "PCSK9" not in set(hits.gene)
    assert set(hits.region) <= {"CDS", "3'UTR", "5'UTR", ""}
    meta = load_index(idx_dir).meta
    assert meta["cds_source"]["annotation"] == 1078 and meta["cds_source"]["longest ORF"] >= 20


# -------------------------------------------------------------------------------------------- several targets

def test_several_targets_in_one_run(tmp_path):
    out = tmp_path / "multi"
    ok(runner.invoke(app, ["sirna", "--target", str(TARGETS), "--gene", "TTR,HAO1", "--target-id", "NM_000688.6",
                           "--off-target", str(TARGETS), "--mirnas", str(MIRBASE), "--known",
                           str(DATA / "sirna-drugs" / "approved-sirnas.tsv"), "--top", "5", "--out", str(out)]))
    overview = pd.read_csv(out / "targets.tsv", sep="\t")
    assert list(overview.target) == ["NM_000688.6", "NM_000371.4", "NM_017545.3"]
    summary = json.loads((out / "summary.json").read_text())
    assert {k["name"] for k in summary["known"]["NM_000371.4"]} == {"patisiran", "vutrisiran"}
    assert [k["name"] for k in summary["known"]["NM_000688.6"]] == ["givosiran"]
    for folder in overview.folder:
        table = pd.read_csv(out / folder / "candidates.csv")
        assert len(table) > 500 and (out / folder / "report.html").is_file()


# ------------------------------------------------------------------------------------------------ seed effect

def synthetic_offtargets(path: Path, seed_site: str, in_utr: bool, n: int = 60) -> None:
    """SYNTHETIC off-target transcripts (seeded random, CDS 101-1000 in the header), each holding three
    7mer-m8 sites of ``seed_site`` (the 7-nt target of guide nt 2-8, followed by C so never an 8mer), in the
    3' UTR or, for the control, in the CDS."""
    rng = np.random.default_rng(7)
    with open(path, "w") as fh:
        for i in range(n):
            seq = list("".join(np.array(list("ACGT"))[rng.integers(0, 4, 1600)]))
            for k in range(3):
                at = (1100 + 150 * k) if in_utr else (300 + 150 * k)
                seq[at:at + 8] = list(seed_site + "C")
            fh.write(f">SYN{i:04d} synthetic transcript CDS=101-1000\n{''.join(seq)}\n")


def test_many_7mer_m8_utr_sites_move_a_candidate_down(tmp_path):
    """Two HAO1 candidates that rank next to each other when their seed sites sit in off-target CDSs: with the
    same sites in 3' UTRs, the one whose seed has them (three 7mer-m8 sites in each of 60 off-target 3' UTRs)
    ranks below the one without."""
    control = tmp_path / "cds.fa"
    synthetic_offtargets(control, "A" * 7, in_utr=False)
    base = design_targets(SirnaInputs(TARGETS, [control]), SirnaOptions(genes=["HAO1"]))[0].table
    top = base[~base.hard_fail].head(40).reset_index(drop=True)
    pair = next(i for i in range(len(top) - 1) if top.site[i][11:18] != top.site[i + 1][11:18]
                and top.site[i][12:18] != top.site[i + 1][12:18] and top.score[i] - top.score[i + 1] < 0.02)
    a, b = top.iloc[pair], top.iloc[pair + 1]
    tables = {}
    for label, in_utr in (("cds", False), ("utr", True)):
        path = tmp_path / f"{label}.fa"
        synthetic_offtargets(path, a.site[11:18], in_utr)
        tables[label] = design_targets(SirnaInputs(TARGETS, [path]), SirnaOptions(genes=["HAO1"]))[0].table \
            .set_index("position")
    cds, utr = tables["cds"], tables["utr"]
    assert cds.loc[a.position, "rank"] < cds.loc[b.position, "rank"]
    assert utr.loc[a.position, "guide_seed_7mer_m8"] >= 180 and cds.loc[a.position, "guide_seed_7mer_m8"] < 30
    assert utr.loc[a.position, "predicted_efficacy"] == cds.loc[a.position, "predicted_efficacy"]
    assert utr.loc[a.position, "rank"] > utr.loc[b.position, "rank"]
    assert utr.loc[b.position, "guide_seed_7mer_m8"] == cds.loc[b.position, "guide_seed_7mer_m8"]
