#!/usr/bin/env python3
"""Map the strands of approved/late-stage siRNA medicines onto the shipped human transcripts.

Reads data/sirna-drugs/approved-sirnas.tsv and data/rnai-targets/human-rnai-target-mrnas.fasta.

Antisense (guide) rows: the target site is the reverse complement of the guide (U->T). The guide's
19-nt 5' core (positions 1-19) is placed on every transcript of the row's target gene at the
window with fewest mismatches; the report gives the 1-based start of that 19-nt site, its
mismatches, and the mismatches over the whole guide (positions 20.. pair with the transcript
bases immediately 5' of the core site, i.e. the 3' overhang of a 21/23-mer guide).
Sense (passenger) rows: the sense strand has the transcript's own orientation; the best window
for the whole sense strand is reported the same way.

Usage:
    python scripts/map_sirna_drugs.py            # print the mapping report
    python scripts/map_sirna_drugs.py --update   # also write target_* and mismatches columns back
"""
import csv
import sys
from pathlib import Path

from oligolab.sequences import read_fasta

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "data" / "sirna-drugs" / "approved-sirnas.tsv"
FASTA = ROOT / "data" / "rnai-targets" / "human-rnai-target-mrnas.fasta"
CORE = 19
COMP = str.maketrans("ACGTU", "TGCAA")


def transcripts_by_id(path):
    """RefSeq id -> (gene symbol from the '(GENE)' in the description, sequence)."""
    return {r.id: (r.description.split("(")[1].split(")")[0] if "(" in r.description else "", r.text())
            for r in read_fasta(path)}


def revcomp_dna(rna):
    return rna.upper().translate(COMP)[::-1]


def best_window(site, seq):
    """(mismatches, 0-based start) of the best ungapped window; ties -> leftmost."""
    n, best = len(site), (len(site) + 1, -1)
    for i in range(len(seq) - n + 1):
        mm = 0
        for a, b in zip(site, seq[i:i + n]):
            if a != b:
                mm += 1
                if mm >= best[0]:
                    break
        else:
            if mm < best[0]:
                best = (mm, i)
                if mm == 0:
                    break
    return best


def map_row(row, transcripts):
    gene = row["target_gene"]
    seq = row["sequence"]
    hits = []
    for acc, (g, tx) in transcripts.items():
        if g != gene:
            continue
        if row["strand"] == "antisense":
            core_site = revcomp_dna(seq[:CORE])
            mm, i = best_window(core_site, tx)
            if i < 0:
                continue
            extra = seq[CORE:]
            ext_mm, ext_cmp = 0, 0
            # guide positions 20.. pair with transcript bases 5' of the core site
            for k, base in enumerate(extra):
                j = i - 1 - k
                if j < 0:
                    break
                ext_cmp += 1
                if revcomp_dna(base) != tx[j]:
                    ext_mm += 1
            full_start = i - ext_cmp
            # mismatch positions in guide numbering (1 = guide 5' end)
            pos = [k + 1 for k in range(CORE) if revcomp_dna(seq[k]) != tx[i + CORE - 1 - k]]
            pos += [CORE + k + 1 for k in range(ext_cmp) if revcomp_dna(extra[k]) != tx[i - 1 - k]]
            hits.append(dict(acc=acc, start=i + 1, core_mm=mm, full_mm=mm + ext_mm,
                             full_len=CORE + ext_cmp, full_start=full_start + 1,
                             site=tx[i:i + CORE], len=len(tx), pos=pos))
        else:
            site = seq.upper().replace("U", "T")
            mm, i = best_window(site, tx)
            if i < 0:
                continue
            pos = [k + 1 for k in range(len(site)) if site[k] != tx[i + k]]
            hits.append(dict(acc=acc, start=i + 1, core_mm=mm, full_mm=mm, full_len=len(site),
                             full_start=i + 1, site=tx[i:i + len(site)], len=len(tx), pos=pos))
    return hits


def main(argv):
    transcripts = transcripts_by_id(FASTA)
    rows = list(csv.DictReader(open(TABLE), delimiter="\t"))
    fields = list(rows[0].keys())
    print(f"transcripts: {len(transcripts)} from {FASTA.relative_to(ROOT)}")
    print("columns: drug strand len transcript(len) site_start(1-based) core_mm full_mm/len site_on_transcript "
          "mm_at (strand positions, 1 = 5' end)")
    for row in rows:
        hits = map_row(row, transcripts)
        label = f"{row['drug']:<11}{row['strand']:<10}{len(row['sequence']):>3}"
        if not hits:
            print(f"{label}  no transcript of {row['target_gene']} in the shipped set")
            continue
        for h in hits:
            kind = "core19" if row["strand"] == "antisense" else "sense"
            print(f"{label}  {h['acc']}({h['len']})  {h['start']:>5}  {kind} mm={h['core_mm']}"
                  f"  full mm={h['full_mm']}/{h['full_len']} (from {h['full_start']})  {h['site']}"
                  f"  mm_at={','.join(map(str, h['pos'])) or '-'}")
        if "--update" in argv:
            first = hits[0]
            row["target_transcript"] = first["acc"]
            row["target_start"] = str(first["start"])
            row["mismatches"] = str(first["core_mm"] if row["strand"] == "antisense" else first["full_mm"])
            if len(hits) > 1:
                others = ";".join(f"{h['acc']}:{h['start']}:mm{h['core_mm']}" for h in hits[1:])
                tag = f"also_maps(transcript:start:mismatches)={others}"
                notes = [n for n in row["notes"].split("; ") if n and not n.startswith("also_maps")]
                row["notes"] = "; ".join(notes + [tag])
    if "--update" in argv:
        with open(TABLE, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        print(f"updated {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
