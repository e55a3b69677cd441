#!/usr/bin/env python3
"""Check ortholog transcripts against the shipped human transcripts and the approved-drug sites.

Reads data/rnai-targets/orthologs/*.fasta (header tags: [gene=..] [species=..] [human=<RefSeq id>]
and optionally [cds_only=1]), data/rnai-targets/human-rnai-target-mrnas.fasta and
data/sirna-drugs/approved-sirnas.tsv.

For every ortholog record:
  * CDS = longest ATG..stop open reading frame on the given strand (same rule for the human
    transcript); the report gives its 1-based coordinates and protein length;
  * CDS identity: global Biopython PairwiseAligner alignment of the two CDSs (match 2, mismatch -3,
    gap open -5, gap extend -2); identity = identical columns / human CDS length, with aligned
    columns and gap columns also reported; protein identity the same way on the translations
    (BLOSUM62, open -10, extend -0.5); and a codon-guided nucleotide identity (the protein
    alignment's columns expanded to codons, stop codon included), which cannot place gaps
    inside codons;
  * whole-transcript identity: the same nucleotide alignment over the full records (local mode, so
    unrelated UTR ends are not forced together);
  * for every antisense strand in approved-sirnas.tsv whose target gene is the ortholog's gene:
    the human 19-nt site (target_transcript, target_start) is (a) projected through the
    whole-transcript alignment and (b) searched as the best ungapped 19-nt window anywhere in the
    ortholog; mismatches are given as guide positions (1 = guide 5' end, which pairs with the
    site's 3' base), gaps in (a) count as mismatches.

Pure Python + Biopython, < 1 s per record.  Usage: python scripts/ortholog_check.py
"""
import csv
import re
import sys
from pathlib import Path

from Bio import Align
from Bio.Align import substitution_matrices
from Bio.Seq import Seq

from oligolab.sirna import longest_orf
from oligolab.sequences import read_fasta

ROOT = Path(__file__).resolve().parent.parent
ORTHO_DIR = ROOT / "data" / "rnai-targets" / "orthologs"
HUMAN = ROOT / "data" / "rnai-targets" / "human-rnai-target-mrnas.fasta"
DRUGS = ROOT / "data" / "sirna-drugs" / "approved-sirnas.tsv"
SITE = 19


def tags(header):
    return dict(re.findall(r"\[(\w+)=([^\]]*)\]", header))


def nt_aligner(mode):
    a = Align.PairwiseAligner()
    a.mode = mode
    a.match_score, a.mismatch_score = 2, -3
    a.open_gap_score, a.extend_gap_score = -5, -2
    return a


def aa_aligner():
    a = Align.PairwiseAligner()
    a.mode = "global"
    a.substitution_matrix = substitution_matrices.load("BLOSUM62")
    a.open_gap_score, a.extend_gap_score = -10, -0.5
    return a


def column_stats(aln):
    """identical, aligned (both residues), gap columns of a pairwise alignment."""
    ident = aligned = 0
    for (s0, e0), (s1, e1) in zip(*aln.aligned):
        for x, y in zip(aln.target[s0:e0], aln.query[s1:e1]):
            aligned += 1
            ident += x == y
    cols = aln.shape[1]
    return ident, aligned, cols - aligned


def project(aln, start0, length):
    """Map human positions start0..start0+length-1 through the alignment -> list of ortholog
    positions (None where the human base is in a gap or outside the aligned region)."""
    m = {}
    for (s0, e0), (s1, e1) in zip(*aln.aligned):
        for k in range(e0 - s0):
            m[s0 + k] = s1 + k
    return [m.get(p) for p in range(start0, start0 + length)]


def best_window(site, seq):
    best = (len(site) + 1, -1)
    for i in range(len(seq) - len(site) + 1):
        mm = sum(1 for a, b in zip(site, seq[i:i + len(site)]) if a != b)
        if mm < best[0]:
            best = (mm, i)
            if mm == 0:
                break
    return best


def guide_mm(site, other):
    """guide positions (1 = 5' end, pairs with the site's 3' base) where other differs from site."""
    n = len(site)
    return sorted(n - i for i, (a, b) in enumerate(zip(site, other)) if a != b)


def main():
    human = {r.id: r.text() for r in read_fasta(HUMAN)}
    drugs = [r for r in csv.DictReader(open(DRUGS), delimiter="\t") if r["strand"] == "antisense"]
    files = sorted(ORTHO_DIR.glob("*.fasta"))
    if not files:
        sys.exit("no ortholog FASTA under " + str(ORTHO_DIR))
    glob_nt, loc_nt, glob_aa = nt_aligner("global"), nt_aligner("local"), aa_aligner()
    cds_by_key = {}
    for path in files:
        for rec in read_fasta(path):
            rid, seq, t = rec.id, rec.text(), tags(rec.description)
            gene, href = t.get("gene", ""), t.get("human", "")
            hseq = human[href]
            hs, he = longest_orf(hseq)
            os_, oe = longest_orf(seq)
            cds_by_key.setdefault((t.get("species", "?"), t.get("gene", "")), []).append((rid, seq[os_:oe]))
            hprot, oprot = str(Seq(hseq[hs:he]).translate()), str(Seq(seq[os_:oe]).translate())
            print(f"== {path.name} {rid} ({t.get('species', '?')}, {len(seq)} nt) vs {href} ({len(hseq)} nt)")
            print(f"   CDS {os_ + 1}..{oe} ({oe - os_} nt, {len(oprot) - 1} aa) vs human CDS {hs + 1}..{he} "
                  f"({he - hs} nt, {len(hprot) - 1} aa)")
            a = glob_nt.align(hseq[hs:he], seq[os_:oe])[0]
            i, al, g = column_stats(a)
            print(f"   CDS nt identity: {i}/{he - hs} = {100 * i / (he - hs):.1f}% of human CDS "
                  f"(aligned columns {al}, gap columns {g})")
            a = glob_aa.align(hprot.rstrip("*"), oprot.rstrip("*"))[0]
            i, al, g = column_stats(a)
            print(f"   protein identity: {i}/{len(hprot) - 1} = {100 * i / (len(hprot) - 1):.1f}% "
                  f"(aligned {al}, gap columns {g})")
            ci = cn = 0  # codon-guided: nt columns implied by the protein alignment (+ stop codons)
            for (s0, e0), (s1, e1) in zip(*a.aligned):
                x, y = hseq[hs + 3 * s0:hs + 3 * e0], seq[os_ + 3 * s1:os_ + 3 * e1]
                ci += sum(1 for u, v in zip(x, y) if u == v)
                cn += len(x)
            ci += sum(1 for u, v in zip(hseq[he - 3:he], seq[oe - 3:oe]) if u == v)
            cn += 3
            print(f"   CDS nt identity, codon-guided (protein alignment columns x3, stop included): "
                  f"{ci}/{cn} = {100 * ci / cn:.1f}%")
            if t.get("cds_only") == "1":
                print("   CDS-only record: no UTR, drug sites outside the CDS cannot be checked")
            whole = loc_nt.align(hseq, seq)[0]
            i, al, g = column_stats(whole)
            (hs0, _), (os0, _) = whole.aligned[0][0], whole.aligned[1][0]
            hs1, os1 = whole.aligned[0][-1][1], whole.aligned[1][-1][1]
            print(f"   whole-transcript local alignment: human {hs0 + 1}..{hs1}, ortholog {os0 + 1}..{os1}, "
                  f"identical {i}/{al} aligned columns ({100 * i / max(al, 1):.1f}%), gap columns {g}")
            for d in drugs:
                if d["target_gene"] != gene:
                    continue
                st = int(d["target_start"]) - 1
                site = human[d["target_transcript"]][st:st + SITE]
                region = "CDS" if hs <= st and st + SITE <= he else ("5'UTR" if st < hs else "3'UTR")
                proj = project(whole, st, SITE) if d["target_transcript"] == href else [None] * SITE
                if all(p is None for p in proj):
                    ptxt = "not in the aligned region"
                else:
                    got = "".join(seq[p] if p is not None else "-" for p in proj)
                    ps = next(p for p in proj if p is not None) + 1
                    mm = guide_mm(site, got)
                    ptxt = f"aligned window from {ps}: {got} mm={len(mm)} at guide {','.join(map(str, mm)) or '-'}"
                bmm, bi = best_window(site, seq)
                bw = seq[bi:bi + SITE]
                gm = guide_mm(site, bw)
                print(f"   {d['drug']:<10} human {d['target_transcript']}:{st + 1} ({region}) {site}")
                print(f"      projected: {ptxt}")
                print(f"      best ungapped window: {bi + 1} {bw} mm={bmm} at guide {','.join(map(str, gm)) or '-'}")
    for (species, gene), recs in sorted(cds_by_key.items()):
        if len(recs) > 1:
            same = len({c for _, c in recs}) == 1
            print(f"== {species} {gene}: CDS of {', '.join(r for r, _ in recs)} "
                  f"{'identical' if same else 'DIFFER'} ({', '.join(str(len(c)) for _, c in recs)} nt)")


if __name__ == "__main__":
    main()
