#!/usr/bin/env python3
"""Check published CRISPR-diagnostic oligos against the SARS-CoV-2 reference.

Reads every ``*.tsv`` in ``data/published-crispr-assays/`` (columns: assay, oligo,
role, sequence, enzyme, reference_start, reference_end, strand, source_repo,
source_path, source_commit, notes) and, for each oligo, reports where it sits
on the Wuhan-Hu-1 reference (NC_045512.2, 1-based, inclusive coordinates):

* plain primers (F3, B3, LF, LB, forward, reverse, probe): exact position and
  strand, or the best position with its number of mismatches.  A 5' tail that
  does not bind the virus (a T7 promoter) is removed first; its length is read
  from the ``promoter_len=N`` token in ``notes``.
* FIP / BIP: the two parts (``F1c|F2`` or ``B1c|B2``) are placed separately and
  their layout is checked (F1c on the minus strand downstream of F2 on the plus
  strand; B1c on the plus strand upstream of B2 on the minus strand).  When the
  row has no ``|`` every split point is tried and those where both parts match
  exactly are listed.
* crRNA spacers: for Cas12 enzymes the spacer equals the protospacer on the
  non-target strand and the 4 nt 5' of it must read TTTV; for Cas13 enzymes the
  target RNA is the reverse complement of the spacer and the base 3' of the
  protospacer (on the target) is reported as the PFS (non-G = ``H`` expected).

* rows whose ``notes`` carry ``target=NAME`` with a target other than the
  SARS-CoV-2 reference (e.g. ``target=human_POP7`` for an RNase P control) are
  not placed; their coordinate columns must be empty.  For such assays the
  script only reports where a crRNA spacer shares sequence with the primers.

The script compares what it finds with the ``reference_start``,
``reference_end`` and ``strand`` columns and prints OK or DIFF for each row.
After the rows of a file it checks every assay as a whole: for LAMP sets the
order F3 < F2 < LF < F1 ... B1 < LB < B2 < B3 with the expected strands (F3,
F2, B1c, LB on +; LF, F1c, B2, B3 on -); for every crRNA whether its
protospacer lies inside the amplicon (F3..B3, or forward..reverse primer) and
which primer sites it overlaps.  It only reads files; it exits 1 when a row or
an assay is inconsistent.

Usage::

    python scripts/verify_published_crispr.py [--ref FASTA] [--dir DIR]
"""
from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REF = ROOT / "data" / "sars-cov-2" / "NC_045512.2.fasta"
DEFAULT_DIR = ROOT / "data" / "published-crispr-assays"
REFERENCE_NAME = "NC_045512.2"

COLUMNS = ["assay", "oligo", "role", "sequence", "enzyme", "reference_start",
           "reference_end", "strand", "source_repo", "source_path",
           "source_commit", "notes"]
ROLES = {"forward", "reverse", "probe", "F3", "B3", "FIP", "BIP", "LF", "LB",
         "crRNA"}
_COMP = str.maketrans("ACGTN", "TGCAN")
_CODE = {"A": 0, "C": 1, "G": 2, "T": 3}


def revcomp(seq: str) -> str:
    return seq.translate(_COMP)[::-1]


def read_fasta(path: Path) -> str:
    parts = []
    with open(path) as handle:
        for line in handle:
            if not line.startswith(">"):
                parts.append(line.strip().upper())
    return "".join(parts)


@dataclass
class Hit:
    start: int          # 1-based, inclusive, on the reference (+) coordinates
    end: int
    strand: str         # '+' if the oligo equals the reference, '-' if its revcomp does
    mismatches: int

    def span(self) -> str:
        return f"{self.start}-{self.end}({self.strand})"


class Reference:
    def __init__(self, seq: str):
        self.seq = seq
        self.codes = np.array([_CODE.get(b, 4) for b in seq], dtype=np.int8)

    def exact(self, oligo: str) -> list[Hit]:
        hits = []
        for strand, query in (("+", oligo), ("-", revcomp(oligo))):
            pos = self.seq.find(query)
            while pos >= 0:
                hits.append(Hit(pos + 1, pos + len(oligo), strand, 0))
                pos = self.seq.find(query, pos + 1)
        return hits

    def best(self, oligo: str) -> list[Hit]:
        """All placements with the minimal number of mismatches (both strands)."""
        n = len(oligo)
        windows = np.lib.stride_tricks.sliding_window_view(self.codes, n)
        found: list[Hit] = []
        best = n + 1
        for strand, query in (("+", oligo), ("-", revcomp(oligo))):
            q = np.array([_CODE.get(b, 5) for b in query], dtype=np.int8)
            mism = (windows != q).sum(axis=1)
            low = int(mism.min())
            if low < best:
                best, found = low, []
            if low == best:
                for i in np.flatnonzero(mism == low):
                    found.append(Hit(int(i) + 1, int(i) + n, strand, low))
        return found


def note_value(notes: str, key: str) -> str | None:
    match = re.search(rf"\b{re.escape(key)}=([^;\s]+)", notes or "")
    return match.group(1) if match else None


def describe_mismatches(ref: Reference, oligo: str, hit: Hit) -> str:
    target = ref.seq[hit.start - 1:hit.end]
    query = oligo if hit.strand == "+" else revcomp(oligo)
    diffs = [f"{hit.start + i}:{t}>{q}" for i, (t, q) in enumerate(zip(target, query)) if t != q]
    return ",".join(diffs)


def place(ref: Reference, oligo: str) -> tuple[list[Hit], str]:
    hits = ref.exact(oligo)
    if hits:
        return hits, "exact"
    hits = ref.best(oligo)
    return hits, f"{hits[0].mismatches} mismatch(es)" if hits else "not placed"


def check_inner(ref: Reference, role: str, seq: str) -> tuple[list[str], tuple[int, int, str] | None, bool]:
    """FIP/BIP: place both parts, check LAMP layout. Returns lines, span, ok."""
    lines: list[str] = []
    if "|" not in seq:
        splits = []
        for i in range(8, len(seq) - 7):
            a, b = ref.exact(seq[:i]), ref.exact(seq[i:])
            if a and b:
                splits.append(f"{seq[:i]}|{seq[i:]} {a[0].span()} {b[0].span()}")
        lines.append("  no split given; exact two-part splits: " + ("; ".join(splits) or "none"))
        return lines, None, False
    first, second = seq.split("|")
    (h1, k1), (h2, k2) = place(ref, first), place(ref, second)
    ok = len(h1) == 1 and len(h2) == 1 and h1[0].mismatches == 0 and h2[0].mismatches == 0
    names = ("F1c", "F2") if role == "FIP" else ("B1c", "B2")
    for name, part, hits, kind in ((names[0], first, h1, k1), (names[1], second, h2, k2)):
        where = ", ".join(h.span() for h in hits) or "-"
        extra = ""
        if hits and hits[0].mismatches:
            extra = " [" + describe_mismatches(ref, part, hits[0]) + "]"
        lines.append(f"  {name} {part} ({len(part)} nt): {where} {kind}{extra}")
    if not (h1 and h2):
        return lines, None, False
    a, b = h1[0], h2[0]
    if role == "FIP":
        layout = a.strand == "-" and b.strand == "+" and a.start > b.end
        wanted = "F1c on (-) downstream of F2 on (+)"
        span = (b.start, a.end, "+")      # strand of the 3' priming part (F2)
    else:
        layout = a.strand == "+" and b.strand == "-" and a.end < b.start
        wanted = "B1c on (+) upstream of B2 on (-)"
        span = (a.start, b.end, "-")      # strand of the 3' priming part (B2)
    lines.append(f"  LAMP layout ({wanted}): {'yes' if layout else 'NO'}; "
                 f"bases between the two binding sites: {abs(a.start - b.end) - 1 if role == 'FIP' else b.start - a.end - 1} nt")
    return lines, span, ok and layout


def check_crrna(ref: Reference, enzyme: str, spacer: str) -> tuple[list[str], tuple[int, int, str] | None, bool]:
    lines: list[str] = []
    enz = enzyme.lower()
    if "cas12" in enz:
        # protospacer (non-target strand) == spacer (DNA letters)
        hits, kind = place(ref, spacer)
        if not hits:
            return ["  spacer not placed"], None, False
        h = hits[0]
        if h.strand == "+":
            pam = ref.seq[h.start - 5:h.start - 1]
        else:
            pam = revcomp(ref.seq[h.end:h.end + 4])
        pam_ok = bool(re.fullmatch(r"TTT[ACG]", pam))
        lines.append(f"  protospacer (= spacer, non-target strand) {h.span()} {kind}; "
                     f"5' PAM on non-target strand: {pam} ({'TTTV' if pam_ok else 'not TTTV'})")
        return lines, (h.start, h.end, h.strand), h.mismatches == 0 and pam_ok
    if "cas13" in enz:
        target = revcomp(spacer)          # RNA target reads as revcomp of spacer
        hits, kind = place(ref, target)
        if not hits:
            return ["  target not placed"], None, False
        h = hits[0]
        if h.strand == "+":
            pfs = ref.seq[h.end:h.end + 1]
        else:
            pfs = revcomp(ref.seq[h.start - 2:h.start - 1])
        lines.append(f"  protospacer (target = revcomp(spacer)) {h.span()} {kind}; "
                     f"3' PFS base on target: {pfs} ({'H (non-G)' if pfs != 'G' else 'G'})")
        return lines, (h.start, h.end, h.strand), h.mismatches == 0
    hits, kind = place(ref, spacer)
    return [f"  spacer {', '.join(x.span() for x in hits)} {kind} (enzyme not Cas12/Cas13)"], None, False


def check_plain(ref: Reference, seq: str, notes: str) -> tuple[list[str], tuple[int, int, str] | None, bool]:
    lines: list[str] = []
    tail = int(note_value(notes, "promoter_len") or 0)
    binding = seq[tail:]
    if tail:
        lines.append(f"  5' tail removed ({tail} nt): {seq[:tail]}; virus-binding part {binding} ({len(binding)} nt)")
    hits, kind = place(ref, binding)
    if not hits:
        return lines + ["  not placed"], None, False
    h = hits[0]
    extra = ""
    if h.mismatches:
        extra = " [" + describe_mismatches(ref, binding, h) + "]"
    lines.append(f"  {', '.join(x.span() for x in hits)} {kind}{extra}")
    return lines, (h.start, h.end, h.strand), len(hits) == 1 and h.mismatches == 0


def _unique_exact(ref: Reference, seq: str) -> Hit | None:
    hits = ref.exact(seq)
    return hits[0] if len(hits) == 1 else None


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)


def _shared(spacer: str, oligo: str, k: int = 8) -> str:
    """Longest stretch (>= k nt) that the spacer shares with the oligo or its reverse complement."""
    best, how_best = "", ""
    for query, how in ((oligo, "same sense"), (revcomp(oligo), "reverse complement")):
        for i in range(len(spacer)):
            j = i + max(len(best), k - 1) + 1
            while j <= len(spacer) and spacer[i:j] in query:
                best, how_best = spacer[i:j], how
                j += 1
    return f"{best} ({len(best)} nt, {how_best})" if best else ""


def check_assays(ref: Reference, rows: list[dict]) -> int:
    """Whole-assay checks: LAMP layout of all primers; crRNA inside the amplicon."""
    problems = 0
    assays: dict[str, list[dict]] = {}
    for row in rows:
        assays.setdefault(row["assay"], []).append(row)
    for name, members in assays.items():
        by_role: dict[str, list[dict]] = {}
        for row in members:
            by_role.setdefault(row["role"], []).append(row)
        target = next((note_value(r["notes"], "target") for r in members
                       if note_value(r["notes"], "target")), None)
        print(f"-- assay {name}: roles {', '.join(sorted(by_role))}")
        if target and target != REFERENCE_NAME:
            for guide in by_role.get("crRNA", []):
                spacer = guide["sequence"].upper()
                for row in members:
                    if row is guide:
                        continue
                    common = _shared(spacer, row["sequence"].upper().replace("|", ""))
                    if common:
                        print(f"  {guide['oligo']} shares with {row['oligo']}: {common}")
            print(f"  target {target}: layout not checked (no reference sequence for it here)")
            continue
        sites: dict[str, Hit | None] = {}
        for role in ("F3", "B3", "LF", "LB", "forward", "reverse"):
            for row in by_role.get(role, [])[:1]:
                binding = row["sequence"].upper()[int(note_value(row["notes"], "promoter_len") or 0):]
                sites[role] = _unique_exact(ref, binding)
        for role, parts in (("FIP", ("F1c", "F2")), ("BIP", ("B1c", "B2"))):
            for row in by_role.get(role, [])[:1]:
                if "|" in row["sequence"]:
                    first, second = row["sequence"].upper().split("|")
                    sites[parts[0]], sites[parts[1]] = _unique_exact(ref, first), _unique_exact(ref, second)
        amplicon = None
        if {"F3", "B3", "F2", "F1c", "B1c", "B2"} <= sites.keys():
            order = ["F3", "F2", "LF", "F1c", "B1c", "LB", "B2", "B3"]
            strands = {"F3": "+", "F2": "+", "LF": "-", "F1c": "-", "B1c": "+", "LB": "+", "B2": "-", "B3": "-"}
            placed = [(k, sites[k]) for k in order if k in sites]
            missing = [k for k, h in placed if h is None]
            if missing:
                print(f"  LAMP layout: {', '.join(missing)} not uniquely placed -> PROBLEM")
                problems += 1
                continue
            bad_strand = [k for k, h in placed if h.strand != strands[k]]
            bad_order = [f"{a}>{b}" for (a, ha), (b, hb) in zip(placed, placed[1:]) if ha.start > hb.start]
            layout = " < ".join(f"{k} {h.start}-{h.end}({h.strand})" for k, h in placed)
            ok = not bad_strand and not bad_order
            print(f"  LAMP layout: {layout}: {'OK' if ok else 'PROBLEM'}"
                  + (f" (strand: {', '.join(bad_strand)})" if bad_strand else "")
                  + (f" (order: {', '.join(bad_order)})" if bad_order else ""))
            problems += 0 if ok else 1
            amplicon = (sites["F3"].start, sites["B3"].end)
            print(f"  amplicon F3..B3: {amplicon[0]}-{amplicon[1]} ({amplicon[1] - amplicon[0] + 1} nt); "
                  f"F1..B1 interior: {sites['F1c'].end + 1}-{sites['B1c'].start - 1}")
        elif {"forward", "reverse"} <= sites.keys() and sites["forward"] and sites["reverse"]:
            amplicon = (sites["forward"].start, sites["reverse"].end)
            print(f"  amplicon forward..reverse: {amplicon[0]}-{amplicon[1]} ({amplicon[1] - amplicon[0] + 1} nt)")
        for guide in by_role.get("crRNA", []):
            if not guide["reference_start"]:
                continue
            span = (int(guide["reference_start"]), int(guide["reference_end"]))
            if amplicon is None:
                print(f"  {guide['oligo']} {span[0]}-{span[1]}: no amplicon to compare with")
                continue
            inside = amplicon[0] <= span[0] and span[1] <= amplicon[1]
            hits = [f"{k} ({_overlaps(span, (h.start, h.end))} nt)" for k, h in sites.items()
                    if h is not None and _overlaps(span, (h.start, h.end))]
            print(f"  {guide['oligo']} protospacer {span[0]}-{span[1]}: "
                  f"{'inside' if inside else 'OUTSIDE'} the amplicon; overlaps primer sites: "
                  f"{', '.join(hits) or 'none'}")
            problems += 0 if inside else 1
    return problems


def verify_file(ref: Reference, path: Path) -> int:
    problems = 0
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if reader.fieldnames != COLUMNS:
            print(f"{path.name}: header differs from {COLUMNS}")
            return 1
        rows = list(reader)
    print(f"== {path.name} ({len(rows)} oligos)")
    for row in rows:
        seq, role = row["sequence"].upper(), row["role"]
        print(f"{row['assay']} | {row['oligo']} | {role} | {row['enzyme']} | {len(seq.replace('|', ''))} nt")
        if role not in ROLES or not re.fullmatch(r"[ACGT|]+", seq):
            print("  INVALID role or alphabet")
            problems += 1
            continue
        if role == "crRNA":
            full = re.search(r"full crRNA[^:]*:\s*([ACGU]+)", row["notes"] or "")
            if full:
                dna = full.group(1).replace("U", "T")
                ok_full = dna.endswith(seq)
                print(f"  full crRNA in notes ({len(dna)} nt) = 5' {dna[:len(dna) - len(seq)]} + spacer: "
                      f"{'OK' if ok_full else 'does NOT end with the spacer -> DIFF'}")
                problems += 0 if ok_full else 1
        target = note_value(row["notes"], "target")
        if target and target != REFERENCE_NAME:
            declared = (row["reference_start"], row["reference_end"], row["strand"])
            empty = not any(declared)
            print(f"  target {target}: not on {REFERENCE_NAME}, not placed; coordinate columns "
                  f"{'empty: OK' if empty else 'should be empty -> DIFF'}")
            problems += 0 if empty else 1
            continue
        if role in ("FIP", "BIP"):
            lines, span, ok = check_inner(ref, role, seq)
        elif role == "crRNA":
            lines, span, ok = check_crrna(ref, row["enzyme"], seq)
        else:
            lines, span, ok = check_plain(ref, seq, row["notes"])
        for line in lines:
            print(line)
        declared = (row["reference_start"], row["reference_end"], row["strand"])
        if span is None:
            print(f"  table says {declared[0]}-{declared[1]}({declared[2]}): cannot compare -> DIFF")
            problems += 1
            continue
        found = (str(span[0]), str(span[1]), span[2])
        same = found == declared
        print(f"  table {declared[0]}-{declared[1]}({declared[2]}) vs found "
              f"{found[0]}-{found[1]}({found[2]}): {'OK' if same else 'DIFF'}"
              f"{'' if ok else ' (not an exact, unique, well-laid-out hit)'}")
        if not same:
            problems += 1
    problems += check_assays(ref, rows)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, default=DEFAULT_REF)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    genome = read_fasta(args.ref)
    print(f"reference {args.ref.name}: {len(genome)} nt")
    ref = Reference(genome)
    problems = sum(verify_file(ref, p) for p in sorted(args.dir.glob("*.tsv")))
    print(f"rows with problems: {problems}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
