#!/usr/bin/env python3
"""Temporal hold-out of `oligolab design` on real data (issue 4, must-show 1 and 2).

Design on the Pango lineages that do not descend from B.1.1.529 (recombinants count as descendants when any
parent does, so XBB.*, XD, XEC ... are held out), then run `oligolab check` (its `run_check`, the same code as
the command) with the designs and the published assays on the B.1.1.529 descendants:

* designs: LbCas12a + RT-LAMP and LwaCas13a + RPA (3 assays each), and LbCas12a + RPA;
* published: DETECTR (Broughton 2020) E and N gene RT-LAMP + LbCas12a crRNA; SHERLOCK (Zhang 2020) S and
  Orf1ab RPA primers (their LwaCas13a crRNA spacers are not in any public source, so these are primer-only
  amplicon assays; our RPA designs are also reported primers-only for a like-for-like comparison);
* specificity: every assay against the shipped near neighbours (SARS-CoV-1, MERS-CoV, HCoV-229E, -NL63, -OC43,
  -HKU1) by the check's exclusivity; human background is not shipped.

Run: ``python scripts/evaluate_design_holdout.py`` (about 5-10 minutes on 2 cores). It writes the designs and
check outputs under ``out/holdout/`` and replaces the block between the holdout markers in docs/design.md.
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

import pandas as pd  # noqa: E402

from oligolab.check import CheckInputs, CheckOptions, run_check  # noqa: E402
from oligolab.design import DesignInputs, DesignOptions, run_design  # noqa: E402
from oligolab.lineages import Lineages  # noqa: E402
from oligolab.sequences import read_fasta  # noqa: E402

SARS = ROOT / "data" / "sars-cov-2"
PANGO = SARS / "pango-consensus-genomes.fasta.zst"
REFERENCE = SARS / "NC_045512.2.fasta"
ANNOTATION = SARS / "reference-annotation.gb"
ALIAS = SARS / "pango-alias-key.json"
NEIGHBOURS = ROOT / "data" / "coronavirus-neighbours" / "human-coronavirus-references.fasta"
PUBLISHED = ROOT / "data" / "published-crispr-assays"
DOC = ROOT / "docs" / "design.md"
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
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/design.md")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pre, post, n_pre, n_post = split(out)
    print(f"design set: {n_pre} lineages not descending from {ANCESTOR}; hold-out: {n_post} descendants")
    design_tsvs, design_rows = [], []
    for enzyme, chem in CONFIGS:
        t = time.perf_counter()
        res = run_design(DesignInputs([pre], reference=REFERENCE, annotation=ANNOTATION, alias_key=ALIAS,
                                      off_targets=[NEIGHBOURS]),
                         out / f"design-{enzyme}-{chem}", DesignOptions(enzyme=enzyme, amplification=chem, n_assays=3))
        dt = time.perf_counter() - t
        print(f"designed {enzyme} + {chem.upper()} in {dt:.0f} s")
        tsv = out / f"design-{enzyme}-{chem}" / "assays.tsv"
        design_tsvs.append(tsv)
        if chem == "rpa":
            design_tsvs.append(primers_only(tsv, out / f"design-{enzyme}-{chem}-primers-only.tsv"))
        for a in res.assays:
            design_rows.append({"assay": a.name, "design_detected": a.scores["check"]["detected"],
                                "design_genomes": res.collection.n})
    published = [PUBLISHED / "detectr-broughton-2020.tsv", PUBLISHED / "sherlock-zhang-2020.tsv"]
    check_out = out / "check-holdout"
    run_check(CheckInputs(published + design_tsvs, [post], None, REFERENCE, ANNOTATION, ALIAS,
                          [NEIGHBOURS]), check_out, CheckOptions())
    summary = pd.read_csv(check_out / "assay_summary.tsv", sep="\t")
    ex = pd.read_csv(check_out / "exclusivity_assays.tsv", sep="\t")
    ex_sites = pd.read_csv(check_out / "exclusivity_sites.tsv", sep="\t")
    guide_hits = ex_sites[(ex_sites["role"] == "crRNA") & ex_sites["call"].isin(["binds", "degraded"])]
    design_df = pd.DataFrame(design_rows)
    rows = []
    for r in summary.itertuples(index=False):
        name = r.assay
        if name.startswith(("DETECTR", "SHERLOCK")):
            source = "published"
        else:
            source = "oligolab design"
        hits = ex[ex["assay"] == name]
        hit_txt = "; ".join(sorted({f"{x.record} ({x.outcome})" for x in hits.itertuples(index=False)})) or "none"
        gh = guide_hits[guide_hits["assay"] == name]
        guide_txt = "; ".join(sorted({f"{x.record} ({x.call}, {x.mismatches} mm)"
                                      for x in gh.itertuples(index=False)}))
        if "crRNA" not in set(ex_sites[ex_sites["assay"] == name]["role"]) and r.kind != "crispr":
            guide_txt = "no guide"
        guide_txt = guide_txt or "none"
        d = design_df[design_df["assay"] == name]
        rows.append({"assay": name, "source": source, "kind": r.kind, "oligos": r.oligos,
                     "design-set detected": (f"{int(d.design_detected.iloc[0])}/{int(d.design_genomes.iloc[0])}"
                                             if len(d) else ""),
                     "hold-out detected": int(r.detected), "at risk": int(r.at_risk),
                     "not detected": int(r.not_detected), "hold-out lineages": int(r.genomes),
                     "detected %": round(100 * r.detected / r.genomes, 2),
                     "detected or at risk %": round(100 * (r.detected + r.at_risk) / r.genomes, 2),
                     "off-target guide sites": guide_txt, "off-target amplicons / detections": hit_txt})
    table = pd.DataFrame(rows)
    order = {"published": 0, "oligolab design": 1}
    table = table.sort_values(["source", "assay"], key=lambda s: s.map(order) if s.name == "source" else s)
    table.to_csv(out / "holdout_table.tsv", sep="\t", index=False)
    md = _markdown(table, n_pre, n_post, time.perf_counter() - t0)
    (out / "holdout_table.md").write_text(md)
    print(md)
    if not args.no_doc:
        _update_doc(md)


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


def _update_doc(md: str) -> None:
    start, end = "<!-- holdout:start -->", "<!-- holdout:end -->"
    text = DOC.read_text() if DOC.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start) + len(start)] + "\n" + md + text[text.index(end):]
    else:
        text += f"\n{start}\n{md}{end}\n"
    DOC.write_text(text)
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
