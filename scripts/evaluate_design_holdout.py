#!/usr/bin/env python3
"""Hold-out evaluations of `oligolab design` on real data (docs/design.md, issue 19 must-show 1).

**Temporal hold-out** (``--benchmark temporal``): design on the Pango lineages that do not descend from
B.1.1.529 (recombinants count as descendants when any parent does, so XBB.*, XD, XEC ... are held out), then
run `oligolab check` (its `run_check`, the same code as the command) with the designs and the published assays
on the B.1.1.529 descendants:

* designs: LbCas12a + RT-LAMP and LwaCas13a + RPA (3 assays each), and LbCas12a + RPA;
* published: DETECTR (Broughton 2020) E and N gene RT-LAMP + LbCas12a crRNA; SHERLOCK (Zhang 2020) S and
  Orf1ab RPA primers (their LwaCas13a crRNA spacers are not in any public source, so these are primer-only
  amplicon assays; our RPA designs are also reported primers-only for a like-for-like comparison);
* specificity: every assay against the shipped near neighbours (SARS-CoV-1, MERS-CoV, HCoV-229E, -NL63, -OC43,
  -HKU1) by the check's exclusivity; human background is not shipped.

**Held-out strain** (``--benchmark strain``): ADAPT's benchmark (broadinstitute/adapt-analysis,
design-analyses/held-out-strain): design 20 LwaCas13a + RPA assays on the 49 sarbecoviruses known before 2019
(data/sarbecoviruses-pre2019/), as if SARS-CoV-2 were unknown, and count how many of the 3,585 SARS-CoV-2 Pango
genomes each detects, beside ADAPT's own 20 designs on the same input.

Each assay is counted twice: by `oligolab check` and by an independent bowtie 1 count (scripts/bowtie_count.py:
guide <= 1 mismatch, primers <= 3 anywhere, the criterion of ADAPT's evaluation). Run:
``python scripts/evaluate_design_holdout.py [--benchmark temporal|strain|all]`` (bowtie indexes only the assays'
regions of every genome, identical slices once). It writes under ``out/holdout/`` and replaces
the blocks between the holdout and strain markers in docs/design.md.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import pandas as pd  # noqa: E402

from oligolab.check import CheckInputs, CheckOptions, run_check  # noqa: E402
from oligolab.design import DesignInputs, DesignOptions, design  # noqa: E402
from oligolab.design.outputs import write_outputs  # noqa: E402
from oligolab.knowledge import amplification  # noqa: E402
from oligolab.lineages import Lineages  # noqa: E402
from oligolab.sequences import read_fasta, reverse_complement  # noqa: E402

import bowtie_count  # noqa: E402

SARS = ROOT / "data" / "sars-cov-2"
PANGO = SARS / "pango-consensus-genomes.fasta.zst"
REFERENCE = SARS / "NC_045512.2.fasta"
ANNOTATION = SARS / "reference-annotation.gb"
ALIAS = SARS / "pango-alias-key.json"
NEIGHBOURS = ROOT / "data" / "coronavirus-neighbours" / "human-coronavirus-references.fasta"
PUBLISHED = ROOT / "data" / "published-crispr-assays"
DOC = ROOT / "docs" / "design.md"
SARBECO = ROOT / "data" / "sarbecoviruses-pre2019"
ANCESTOR = "B.1.1.529"
CONFIGS = [("LbCas12a", "lamp"), ("LwaCas13a", "rpa"), ("LbCas12a", "rpa")]


def split(out: Path) -> tuple[Path, Path, int, int]:
    """Write the design (pre-Omicron) and hold-out (B.1.1.529 descendants) genomes as gzip FASTA."""
    lin = Lineages(ALIAS)
    pre, post = out / "design-genomes.fasta.gz", out / "holdout-genomes.fasta.gz"
    n = [0, 0]
    with gzip.open(pre, "wt") as a, gzip.open(post, "wt") as b:
        for rec in read_fasta(PANGO):
            held = lin.has_ancestor(rec.id, ANCESTOR)
            (b if held else a).write(f">{rec.id}\n{rec.text()}\n")
            n[held] += 1
    return pre, post, n[0], n[1]


def primers_only(assays_tsv: Path, out: Path) -> Path:
    """The designs' primers without their guides (amplicon-only assays, comparable to SHERLOCK's primers)."""
    df = pd.read_csv(assays_tsv, sep="\t", dtype=str).fillna("")
    df = df[df["role"] != "crRNA"].copy()
    df["assay"] = df["assay"] + " (primers only)"
    df["oligo"] = df["oligo"] + "-p"
    df.to_csv(out, sep="\t", index=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "holdout")
    ap.add_argument("--benchmark", choices=("temporal", "strain", "all"), default="all")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/design.md")
    ap.add_argument("--no-bowtie", action="store_true", help="leave out the independent bowtie count")
    ap.add_argument("--max-guides", type=int, default=3, help="guides per held-out-strain design at most")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.benchmark in ("temporal", "all"):
        md = temporal(args.out, not args.no_bowtie)
        if not args.no_doc:
            _update_doc(md, "holdout")
    if args.benchmark in ("strain", "all"):
        md = strain(args.out, not args.no_bowtie, args.max_guides)
        if not args.no_doc:
            _update_doc(md, "strain")


def bowtie_counts(tsvs: list[Path], genomes: Path, work: Path, ids: list[str] | None = None) -> dict[str, int]:
    """Independent bowtie counts of every assay of the tables on ``genomes`` (or the ``ids`` among them), on an
    index of the assays' regions cut from every genome (bowtie_count.build_region_index: the same counts as an
    index of whole genomes, checked on every 40th Pango genome, in minutes instead of an hour on a loaded machine)."""
    prefix, slices = bowtie_count.build_region_index(genomes, tsvs, REFERENCE, work / "bowtie-regions")
    ids = ids if ids is not None else list(dict.fromkeys(g for gs in slices.values() for g in gs))
    out: dict[str, int] = {}
    for k, tsv in enumerate(tsvs):
        out.update(bowtie_count.count_regions(tsv, prefix, slices, ids, work / f"bowtie-{k}"))
    return out


def temporal(out: Path, with_bowtie: bool) -> str:
    """The temporal hold-out table (markdown)."""
    t0 = time.perf_counter()
    pre, post, n_pre, n_post = split(out)
    print(f"design set: {n_pre} lineages not descending from {ANCESTOR}; hold-out: {n_post} descendants")
    design_tsvs, design_rows = [], []
    for enzyme, chem in CONFIGS:
        t = time.perf_counter()
        inputs = DesignInputs([pre], reference=REFERENCE, annotation=ANNOTATION, alias_key=ALIAS,
                              off_targets=[NEIGHBOURS])
        res = design(inputs, DesignOptions(enzyme=enzyme, amplification=chem, n_assays=3))
        write_outputs(res, out / f"design-{enzyme}-{chem}")
        print(f"designed {enzyme} + {chem.upper()} in {time.perf_counter() - t:.0f} s")
        tsv = out / f"design-{enzyme}-{chem}" / "assays.tsv"
        design_tsvs.append(tsv)
        if chem == "rpa":
            design_tsvs.append(primers_only(tsv, out / f"design-{enzyme}-{chem}-primers-only.tsv"))
        for a in res.assays:
            design_rows.append({"assay": a.name, "design_detected": a.scores["check"]["detected"],
                                "design_genomes": res.collection.n, "survival": a.prescore.get("survival")})
    published = [PUBLISHED / "detectr-broughton-2020.tsv", PUBLISHED / "sherlock-zhang-2020.tsv"]
    check_out = out / "check-holdout"
    run_check(CheckInputs(published + design_tsvs, [post], None, REFERENCE, ANNOTATION, ALIAS,
                          [NEIGHBOURS]), check_out, CheckOptions())
    bowtie = {}
    if with_bowtie:
        bowtie = bowtie_counts(published + design_tsvs, post, out / "bowtie-holdout")
    table = _temporal_table(check_out, pd.DataFrame(design_rows), bowtie)
    table.to_csv(out / "holdout_table.tsv", sep="\t", index=False)
    md = _markdown(table, n_pre, n_post, time.perf_counter() - t0)
    (out / "holdout_table.md").write_text(md)
    print(md)
    return md


def _temporal_table(check_out: Path, design_df: pd.DataFrame, bowtie: dict[str, int]) -> pd.DataFrame:
    summary = pd.read_csv(check_out / "assay_summary.tsv", sep="\t")
    ex = pd.read_csv(check_out / "exclusivity_assays.tsv", sep="\t")
    ex_sites = pd.read_csv(check_out / "exclusivity_sites.tsv", sep="\t")
    guide_hits = ex_sites[(ex_sites["role"] == "crRNA") & ex_sites["call"].isin(["binds", "degraded"])]
    rows = []
    for r in summary.itertuples(index=False):
        name = r.assay
        source = "published" if name.startswith(("DETECTR", "SHERLOCK")) else "oligolab design"
        hits = ex[ex["assay"] == name]
        hit_txt = "; ".join(sorted({f"{x.record} ({x.outcome})" for x in hits.itertuples(index=False)})) or "none"
        gh = guide_hits[guide_hits["assay"] == name]
        guide_txt = "; ".join(sorted({f"{x.record} ({x.call}, {x.mismatches} mm)"
                                      for x in gh.itertuples(index=False)}))
        if "crRNA" not in set(ex_sites[ex_sites["assay"] == name]["role"]) and r.kind != "crispr":
            guide_txt = "no guide"
        d = design_df[design_df["assay"] == name]
        rows.append({"assay": name, "source": source, "kind": r.kind, "oligos": r.oligos,
                     "design-set detected": (f"{int(d.design_detected.iloc[0])}/{int(d.design_genomes.iloc[0])}"
                                             if len(d) else ""),
                     "expected survival": (round(float(d.survival.iloc[0]), 4) if len(d) else ""),
                     "hold-out detected": int(r.detected), "at risk": int(r.at_risk),
                     "not detected": int(r.not_detected), "hold-out lineages": int(r.genomes),
                     "detected %": round(100 * r.detected / r.genomes, 2),
                     "detected or at risk %": round(100 * (r.detected + r.at_risk) / r.genomes, 2),
                     "bowtie count": bowtie.get(name, ""),
                     "off-target guide sites": guide_txt or "none", "off-target amplicons / detections": hit_txt})
    table = pd.DataFrame(rows)
    order = {"published": 0, "oligolab design": 1}
    return table.sort_values(["source", "assay"], key=lambda s: s.map(order) if s.name == "source" else s)


def adapt_assays(path: Path, out: Path) -> Path:
    """ADAPT's designs as the project's assay table: its left primers (several per site) as alternative
    forward primers with the T7 tail, its right primers as reverse primers (reverse complement of the target
    sequence), its guides as LwaCas13a spacers (reverse complement of the target-sense guide)."""
    t7 = amplification()["tails"]["T7"]
    d = pd.read_csv(path, sep="\t")
    rows = []
    for k, r in enumerate(d.itertuples(index=False), 1):
        name = f"ADAPT-{k}"
        for j, s in enumerate(r[7].split(), 1):
            rows.append([name, f"{name}-F{j}", "forward", t7.lower() + s, "", "", "ADAPT left primer"])
        for j, s in enumerate(r[11].split(), 1):
            rows.append([name, f"{name}-R{j}", "reverse", reverse_complement(s), "", "", "ADAPT right primer"])
        for j, s in enumerate(r[18].split(), 1):
            rows.append([name, f"{name}-g{j}", "crRNA", reverse_complement(s), "LwaCas13a", "", "ADAPT guide"])
    tsv = out / "adapt-designs.tsv"
    pd.DataFrame(rows, columns=["assay", "oligo", "role", "sequence", "enzyme", "max_amplicon", "notes"]).to_csv(
        tsv, sep="\t", index=False)
    return tsv


def strain(out: Path, with_bowtie: bool, max_guides: int = 3) -> str:
    """The held-out-strain table (markdown): ours and ADAPT's 20 designs on the 3,585 SARS-CoV-2 genomes."""
    t0 = time.perf_counter()
    genomes = SARBECO / "sarbecoviruses-pre2019-49.fasta.xz"
    res = design(DesignInputs([genomes]), DesignOptions(enzyme="LwaCas13a", amplification="rpa", n_assays=20,
                                                                  max_guides=max_guides))
    write_outputs(res, out / "strain-design")
    design_s = time.perf_counter() - t0
    ours = out / "strain-design" / "assays.tsv"
    theirs = adapt_assays(SARBECO / "adapt-design-downsampled-sars-cov-1.tsv", out)
    check_out = out / "check-strain"
    run_check(CheckInputs([ours, theirs], [PANGO], None, REFERENCE, ANNOTATION, ALIAS, []), check_out,
              CheckOptions())
    bowtie = bowtie_counts([ours, theirs], PANGO, out / "strain") if with_bowtie else {}
    summary = pd.read_csv(check_out / "assay_summary.tsv", sep="\t")
    expected = {a.name: a.prescore.get("survival") for a in res.assays}
    input_det = {a.name: a.scores["check"]["detected"] for a in res.assays}
    rows = []
    for r in summary.itertuples(index=False):
        rows.append({"assay": r.assay, "source": "ADAPT 1.x (adapt-analysis)" if r.assay.startswith("ADAPT")
                     else "oligolab design", "oligos": r.oligos,
                     "design-set detected": f"{input_det[r.assay]}/{res.collection.n}" if r.assay in input_det else "",
                     "expected survival": round(expected[r.assay], 4) if r.assay in expected else "",
                     "SARS-CoV-2 detected (check)": int(r.detected), "at risk": int(r.at_risk),
                     "detected %": round(100 * r.detected / r.genomes, 2),
                     "detected or at risk %": round(100 * (r.detected + r.at_risk) / r.genomes, 2),
                     "bowtie count": bowtie.get(r.assay, ""),
                     "bowtie %": round(100 * bowtie[r.assay] / r.genomes, 2) if r.assay in bowtie else ""})
    table = pd.DataFrame(rows)
    table.to_csv(out / "strain_table.tsv", sep="\t", index=False)
    md = _strain_markdown(table, int(summary["genomes"].iloc[0]), design_s, time.perf_counter() - t0, max_guides)
    (out / "strain_table.md").write_text(md)
    print(md)
    return md


def _strain_markdown(table: pd.DataFrame, n: int, design_s: float, seconds: float, max_guides: int) -> str:
    def n98(source: str, col: str) -> int:
        sub = table[table["source"] == source]
        return int((pd.to_numeric(sub[col], errors="coerce") >= 98.0).sum())

    ours, adapt = "oligolab design", "ADAPT 1.x (adapt-analysis)"
    head = (f"Generated by `python scripts/evaluate_design_holdout.py --benchmark strain --max-guides {max_guides}` "
            f"({time.strftime('%Y-%m-%d')}, {platform.machine()}, design {design_s:.0f} s, all {seconds:.0f} s, "
            f"shared machine). Designs made on the 49 sarbecoviruses known before 2019 (no SARS-CoV-2), evaluated "
            f"on the {n:,} SARS-CoV-2 Pango genomes. Designs detecting >= 98 %: oligolab "
            f"{n98(ours, 'detected %')}/20 by `oligolab check` ({n98(ours, 'detected or at risk %')}/20 detected or at "
            f"risk), {n98(ours, 'bowtie %')}/20 by the bowtie count; ADAPT {n98(adapt, 'detected %')}/20 by `oligolab "
            f"check` ({n98(adapt, 'detected or at risk %')}/20), {n98(adapt, 'bowtie %')}/20 by the bowtie count. "
            "'expected survival' is the design's own estimate (before seeing SARS-CoV-2) that an unseen genome of "
            "the family keeps every oligo binding.")
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in table.itertuples(index=False)]
    return head + "\n\n" + "\n".join(lines) + "\n"


def _markdown(table: pd.DataFrame, n_pre: int, n_post: int, seconds: float) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in r) + " |")
    best_pub = table[table["source"] == "published"]["hold-out detected"].max()
    best_des = table[(table["source"] != "published") & ~table["assay"].str.contains("primers only")][
        "hold-out detected"].max()
    head = (f"Generated by `python scripts/evaluate_design_holdout.py` ({time.strftime('%Y-%m-%d')}, "
            f"{platform.machine()}, {seconds:.0f} s). Design set: {n_pre} Pango lineage consensus genomes that do "
            f"not descend from {ANCESTOR}; hold-out: {n_post} descendants (recombinants with an Omicron parent "
            "included). One genome per lineage, so genomes = lineages. Calls by `oligolab check` (default rules, "
            "<= 3 differences, <= 2 gap nt). Best published assay detects "
            f"{best_pub} hold-out lineages; best design {best_des}.")
    return head + "\n\n" + "\n".join(lines) + "\n"


def _update_doc(md: str, marker: str) -> None:
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = DOC.read_text() if DOC.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start) + len(start)] + "\n" + md + text[text.index(end):]
    else:
        text += f"\n{start}\n{md}{end}\n"
    DOC.write_text(text)
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
