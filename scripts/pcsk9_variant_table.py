#!/usr/bin/env python3
"""Flatten the shipped gnomAD browser PCSK9 responses into variant tables on NM_174936.4.

Input (exact copies, xz-compressed): data/rnai-targets/variants/
    gnomad-browser-pcsk9-variant-summary-v2.1.1-grch37.json.xz   (gnomAD v2.1.1, exomes+genomes)
    gnomad-browser-pcsk9-variant-summary-v3.1.2-grch38.json.xz   (gnomAD v3.1.2, genomes)
Output (with --write), beside them, xz-compressed TSV: pcsk9-gnomad-v2.1.1-grch37.tsv.xz,
pcsk9-gnomad-v3.1.2-grch38.tsv.xz (gnomAD variants) and
pcsk9-clinvar-20220104-gnomad-v2.1.1-grch37.tsv.xz / -v3.1.2-grch38.tsv.xz (the ClinVar variant
list carried in the same responses, with that dataset's gnomAD ac/an).

Coordinates: `chrom`/`pos`/`ref`/`alt` are the gnomAD variant id (VCF style, 1-based, genome
build in the file name).  `hgvsc` is on `transcript` (gnomAD's canonical ENST00000302118.5 for
almost all rows).  `nm_start`/`nm_end` are 1-based positions on NM_174936.4 as shipped in
data/rnai-targets/human-rnai-target-mrnas.fasta, derived from hgvsc of ENST00000302118.5 rows only:
c.N -> CDS start + N - 1, c.-N -> CDS start - N, c.*N -> CDS end + N, with the CDS found as the
longest ORF of NM_174936.4 (291..2369); intronic (c.N+k / c.N-k) and non-canonical rows get no
position.  `ref_check` compares the reference bases named in hgvsc (SNV ref base, del/dup
sequence) with NM_174936.4: ok / MISMATCH / na.  ac/an/af are exome + genome summed (what the
gnomAD browser shows as "Total"); `af` is empty when an = 0.  ClinVar columns come from the
response's own clinvar_variants list (ClinVar release in the response: 2022-01-04).

The report (always printed) gives the counts, the ref_check summary, and every variant whose
NM_174936.4 interval overlaps the 19-nt site (and the 23-nt guide footprint) of each PCSK9 drug in
data/sirna-drugs/approved-sirnas.tsv.

Usage: python scripts/pcsk9_variant_table.py [--write]
"""
import csv
import json
import lzma
import re
import sys
from pathlib import Path

from oligolab.sirna import longest_orf
from oligolab.sequences import read_fasta

ROOT = Path(__file__).resolve().parent.parent
VDIR = ROOT / "data" / "rnai-targets" / "variants"
HUMAN = ROOT / "data" / "rnai-targets" / "human-rnai-target-mrnas.fasta"
DRUGS = ROOT / "data" / "sirna-drugs" / "approved-sirnas.tsv"
NM = "NM_174936.4"
CANON = "ENST00000302118"
DATASETS = [
    ("gnomad_v2.1.1", "GRCh37", "gnomad-browser-pcsk9-variant-summary-v2.1.1-grch37.json.xz",
     "pcsk9-gnomad-v2.1.1-grch37.tsv.xz", "pcsk9-clinvar-20220104-gnomad-v2.1.1-grch37.tsv.xz"),
    ("gnomad_v3.1.2", "GRCh38", "gnomad-browser-pcsk9-variant-summary-v3.1.2-grch38.json.xz",
     "pcsk9-gnomad-v3.1.2-grch38.tsv.xz", "pcsk9-clinvar-20220104-gnomad-v3.1.2-grch38.tsv.xz"),
]
CLIN_COLS = ["dataset", "genome_build", "variant_id", "chrom", "pos", "ref", "alt", "transcript_id",
             "hgvsc", "hgvsp", "major_consequence", "clinical_significance", "gold_stars",
             "review_status", "clinvar_variation_id", "in_gnomad", "gnomad_exome_ac", "gnomad_exome_an",
             "gnomad_genome_ac", "gnomad_genome_an", "nm_start", "nm_end", "ref_check"]
COLS = ["dataset", "genome_build", "variant_id", "chrom", "pos", "ref", "alt", "rsids", "transcript",
        "hgvsc", "hgvsp", "consequence", "flags", "nm_start", "nm_end", "ref_check",
        "exome_ac", "exome_an", "exome_ac_hom", "exome_filters",
        "genome_ac", "genome_an", "genome_ac_hom", "genome_filters",
        "ac", "an", "af", "clinvar_significance", "clinvar_variation_id"]
POS = r"([-*]?)(\d+)"


def c_to_nm(tok, cds_start, cds_end):
    sign, n = tok
    n = int(n)
    if sign == "-":
        return cds_start - n
    if sign == "*":
        return cds_end + n
    return cds_start + n - 1


def map_hgvsc(hgvsc, tx, cds_start, cds_end):
    """(nm_start, nm_end, ref_check) for an hgvsc string on the canonical transcript."""
    if not hgvsc:
        return None, None, "na"
    m = re.fullmatch(r"c\." + POS + r"(?:_" + POS + r")?(.*)", hgvsc)
    if not m:  # intronic (+/- offsets) or unparsed
        return None, None, "na"
    a = c_to_nm(m.group(1, 2), cds_start, cds_end)
    b = c_to_nm(m.group(3, 4), cds_start, cds_end) if m.group(4) else a
    rest = m.group(5)
    if rest[:1] in ("+", "-"):  # intronic offset
        return None, None, "na"
    if not (1 <= a <= b <= len(tx)):
        return None, None, "na"
    snv = re.fullmatch(r"([ACGT])>([ACGT])", rest)
    seqd = re.fullmatch(r"(?:del|dup)([ACGT]+)", rest)
    if snv:
        check = "ok" if tx[a - 1] == snv.group(1) else "MISMATCH"
    elif seqd:
        check = "ok" if tx[a - 1:b] == seqd.group(1) else "MISMATCH"
    else:
        check = "na"
    return a, b, check


def fmt(x):
    if x is None:
        return ""
    if isinstance(x, list):
        return ",".join(map(str, x))
    return str(x)


def rows_for(label, build, path, tx, cds_start, cds_end):
    gene = json.load(lzma.open(path))["data"]["gene"]
    clin = {c["variant_id"]: c for c in gene["clinvar_variants"]}
    out = []
    for v in gene["variants"]:
        chrom, pos, ref, alt = v["variant_id"].split("-")
        tr = f"{v['transcript_id']}.{v['transcript_version']}"
        if v["transcript_id"] == CANON:
            s, e, chk = map_hgvsc(v["hgvsc"], tx, cds_start, cds_end)
        else:
            s, e, chk = None, None, "na"
        ex, ge = v.get("exome") or {}, v.get("genome") or {}
        ac = (ex.get("ac") or 0) + (ge.get("ac") or 0)
        an = (ex.get("an") or 0) + (ge.get("an") or 0)
        c = clin.get(v["variant_id"], {})
        out.append({
            "dataset": label, "genome_build": build, "variant_id": v["variant_id"], "chrom": chrom,
            "pos": pos, "ref": ref, "alt": alt, "rsids": fmt(v.get("rsids")), "transcript": tr,
            "hgvsc": fmt(v.get("hgvsc")), "hgvsp": fmt(v.get("hgvsp")), "consequence": fmt(v.get("consequence")),
            "flags": fmt(v.get("flags")), "nm_start": fmt(s), "nm_end": fmt(e), "ref_check": chk,
            "exome_ac": fmt(ex.get("ac")), "exome_an": fmt(ex.get("an")), "exome_ac_hom": fmt(ex.get("ac_hom")),
            "exome_filters": fmt(ex.get("filters")) if ex else "",
            "genome_ac": fmt(ge.get("ac")), "genome_an": fmt(ge.get("an")), "genome_ac_hom": fmt(ge.get("ac_hom")),
            "genome_filters": fmt(ge.get("filters")) if ge else "",
            "ac": ac, "an": an, "af": f"{ac / an:.6g}" if an else "",
            "clinvar_significance": fmt(c.get("clinical_significance")),
            "clinvar_variation_id": fmt(c.get("clinvar_variation_id")),
        })
    return out


def clinvar_rows(label, build, path, tx, cds_start, cds_end):
    out = []
    for c in json.load(lzma.open(path))["data"]["gene"]["clinvar_variants"]:
        chrom, pos, ref, alt = c["variant_id"].split("-")
        if c["transcript_id"] == CANON:
            s, e, chk = map_hgvsc(c["hgvsc"], tx, cds_start, cds_end)
        else:
            s, e, chk = None, None, "na"
        g = c.get("gnomad") or {}
        ex, ge = g.get("exome") or {}, g.get("genome") or {}
        out.append({
            "dataset": label, "genome_build": build, "variant_id": c["variant_id"], "chrom": chrom,
            "pos": pos, "ref": ref, "alt": alt, "transcript_id": fmt(c.get("transcript_id")),
            "hgvsc": fmt(c.get("hgvsc")), "hgvsp": fmt(c.get("hgvsp")),
            "major_consequence": fmt(c.get("major_consequence")),
            "clinical_significance": fmt(c.get("clinical_significance")), "gold_stars": fmt(c.get("gold_stars")),
            "review_status": fmt(c.get("review_status")), "clinvar_variation_id": fmt(c.get("clinvar_variation_id")),
            "in_gnomad": fmt(c.get("in_gnomad")), "gnomad_exome_ac": fmt(ex.get("ac")),
            "gnomad_exome_an": fmt(ex.get("an")), "gnomad_genome_ac": fmt(ge.get("ac")),
            "gnomad_genome_an": fmt(ge.get("an")), "nm_start": fmt(s), "nm_end": fmt(e), "ref_check": chk,
        })
    return out


def main():
    write = "--write" in sys.argv[1:]
    tx = next(r.text() for r in read_fasta(HUMAN) if r.id == NM)
    s0, e0 = longest_orf(tx)
    cds_start, cds_end = s0 + 1, e0
    print(f"{NM}: {len(tx)} nt, CDS {cds_start}..{cds_end} (longest ORF)")
    drugs = [r for r in csv.DictReader(open(DRUGS), delimiter="\t")
             if r["target_gene"] == "PCSK9" and r["strand"] == "antisense"]
    for label, build, src, dst, cdst in DATASETS:
        rows = rows_for(label, build, VDIR / src, tx, cds_start, cds_end)
        n_can = sum(r["transcript"].startswith(CANON) for r in rows)
        n_pos = sum(bool(r["nm_start"]) for r in rows)
        chk = {k: sum(r["ref_check"] == k for r in rows) for k in ("ok", "MISMATCH", "na")}
        n_clin = sum(bool(r["clinvar_significance"]) for r in rows)
        print(f"== {label} ({build}): {len(rows)} variants, {n_can} on {CANON}, {n_pos} placed on {NM}, "
              f"ref_check {chk}, {n_clin} with a ClinVar record")
        placed = [int(r["nm_start"]) for r in rows if r["nm_start"]]
        lo, hi = min(placed), max(placed)
        print(f"   placed variants span {NM}:{lo}-{hi} (CDS {cds_start}-{cds_end}); the gnomAD gene "
              f"response lists exonic variants near the CDS only, so positions outside {lo}-{hi} "
              f"(most of the 3'UTR) are NOT covered: absence there means no data, not no variant")
        for d in drugs:
            st = int(d["target_start"])
            glen = len(d["sequence"])
            core = (st, st + 18)
            foot = (st - max(glen - 19, 0), st + 18)  # guide 3' residues pair 5' of the core site
            print(f"   {d['drug']} site {NM}:{core[0]}-{core[1]} (19-nt core), guide footprint "
                  f"{foot[0]}-{foot[1]} ({glen} nt)")
            hits = [r for r in rows if r["nm_start"] and int(r["nm_start"]) <= foot[1] and int(r["nm_end"]) >= foot[0]]
            for r in hits:
                where = "core" if int(r["nm_start"]) <= core[1] and int(r["nm_end"]) >= core[0] else "overhang"
                print(f"      {r['variant_id']} {r['hgvsc']} nm {r['nm_start']}-{r['nm_end']} ({where}) "
                      f"ac/an {r['ac']}/{r['an']} af {r['af'] or '-'} rsids {r['rsids'] or '-'} "
                      f"filters {r['exome_filters'] or '-'}|{r['genome_filters'] or '-'}")
            if not hits and (foot[0] > hi or foot[1] < lo):
                print(f"      site outside the covered interval {lo}-{hi}: no information in this dataset")
            elif not hits:
                print("      no variant listed in this dataset")
        if write:
            with lzma.open(VDIR / dst, "wt", newline="", preset=9) as fh:
                w = csv.DictWriter(fh, COLS, delimiter="\t", lineterminator="\n")
                w.writeheader()
                w.writerows(rows)
            print(f"   wrote {VDIR / dst}")
        crows = clinvar_rows(label, build, VDIR / src, tx, cds_start, cds_end)
        cchk = {k: sum(r["ref_check"] == k for r in crows) for k in ("ok", "MISMATCH", "na")}
        npath = sum("athogenic" in r["clinical_significance"] and "onflicting" not in r["clinical_significance"]
                    for r in crows)
        print(f"   ClinVar list in the same response: {len(crows)} variants ({npath} pathogenic/likely "
              f"pathogenic), ref_check {cchk}")
        if write:
            with lzma.open(VDIR / cdst, "wt", newline="", preset=9) as fh:
                w = csv.DictWriter(fh, CLIN_COLS, delimiter="\t", lineterminator="\n")
                w.writeheader()
                w.writerows(crows)
            print(f"   wrote {VDIR / cdst}")


if __name__ == "__main__":
    main()
