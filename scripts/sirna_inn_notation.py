#!/usr/bin/env python3
"""Turn WHO INN chemical names of siRNA strands into a compact per-residue notation.

Input: data/sirna-drugs/inn-chemical-names.tsv (INN chemical names as stored in a public
repository, see data/sirna-drugs/SOURCE.md). Output (stdout): one line per strand with the
unmodified base sequence (5'->3') and the notation described in data/sirna-drugs/MODIFICATIONS.md:

    lower case a c g u   2'-O-methyl ribonucleotide
    Af Cf Gf Uf          2'-deoxy-2'-fluoro ribonucleotide
    A C G U              unmodified ribonucleotide (2'-OH)
    dT                   2'-deoxythymidine
    s                    phosphorothioate linkage between the two residues it separates
    -GalNAc3             triantennary GalNAc ligand on that end

Reading rules of the INN names (standard IUPAC oligonucleotide nomenclature):
  * residues joined by (3'->5') are listed 5' -> 3';
  * residues joined by (5'->3') are listed 3' -> 5' and are reversed here;
  * "P-thio<base>ylyl" marks a phosphorothioate on that residue's linking phosphate, i.e. the
    linkage to the next residue in the listing order.

The script is only a checked transcription aid: it asserts every residue yields exactly one base
and exactly one sugar class, and `--check` compares the bases with the sequences stated by the
source repository.
"""
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "data" / "sirna-drugs" / "inn-chemical-names.tsv"

LINK = re.compile(r"-?\((3'|5')→(3'|5')\)-?")
BASES = (("thymid", "T"), ("urid", "U"), ("cytid", "C"), ("adenyl", "A"), ("adenos", "A"),
         ("adenylate", "A"), ("guanyl", "G"), ("guanos", "G"))


def residue(token):
    t = token.lower()
    found = {b for key, b in BASES if key in t}
    if len(found) != 1:
        raise ValueError(f"residue token without exactly one base: {token!r} -> {found}")
    base = found.pop()
    if "2'-deoxy-2'-fluoro" in t:
        sugar = "F"
    elif "2'-o-methyl" in t:
        sugar = "OMe"
    elif base == "T":
        sugar = "DNA"
    else:
        sugar = "RNA"
    return base, sugar, "p-thio" in t


def split_strands(name):
    """Split an INN duplex name into strand texts at 'with' / 'duplexwith'."""
    parts = re.split(r"(?<=[a-z])(?:duplex)?with(?=[a-z\d'-]|all)", name, maxsplit=1)
    return parts


def parse_strand(text):
    arrows = LINK.findall(text)
    tokens = [t for t in LINK.split(text)]
    # LINK.split interleaves the two captured groups; keep the residue texts only
    residues = tokens[0::3]
    directions = {a for a, _ in arrows}
    if len(directions) != 1:
        raise ValueError(f"mixed or missing linkage directions: {directions}")
    listed_5to3 = directions.pop() == "3'"
    res = [residue(r) for r in residues]
    # phosphorothioate flag belongs to the linkage after the residue in listing order
    links = [ps for _, _, ps in res[:-1]]
    bases = [(b, s) for b, s, _ in res]
    if not listed_5to3:
        bases = bases[::-1]
        links = links[::-1]
    return bases, links


def notation(bases, links):
    out = []
    for i, (b, s) in enumerate(bases):
        if s == "OMe":
            out.append(b.lower())
        elif s == "F":
            out.append(b + "f")
        elif s == "DNA":
            out.append("d" + b)
        else:
            out.append(b)
        if i < len(links) and links[i]:
            out.append("s")
    return "".join(out)


def strip_heading(text):
    # drop text before the first residue (names of ligands, "RNA duplex of", ...)
    m = re.search(r"(all-P-ambo-|RNAduplexof|hydrogen(?=all))", text)
    if m:
        text = text[m.end():]
    text = re.sub(r"^all-P-ambo-", "", text)
    # drop trailing INN heading text glued to the final nucleoside
    text = re.sub(r"(uridine|cytidine|adenosine|guanosine|thymidine|adenylate)[a-zé-]*$", r"\1", text)
    return text


def main(argv):
    rows = list(csv.DictReader(open(TABLE), delimiter="\t"))
    results = {}
    for row in rows:
        name = row["chemical_name_as_stored"]
        strands = split_strands(name)
        for k, st in enumerate(strands, 1):
            bases, links = parse_strand(strip_heading(st))
            seq = "".join(b for b, _ in bases)
            note = notation(bases, links)
            if row["drug"] == "lumasiran" and k == 1:
                note += "-GalNAc3"
            results[(row["drug"], k)] = (seq, note)
            print(f"{row['drug']}\tstrand{k}\t{len(bases)}\t{seq}\t{note}")
    if "--check" in argv:
        # sequences as stated by the same source repository (inn_sequences.json sequence_base /
        # antisense_sequence_base, data/oligos.csv sequence_5to3); copied, see SOURCE.md
        expected = {
            ("patisiran", 1): "GUAACCAAGAGUAUUCCAUTT",
            ("patisiran", 2): "AUGGAAUACUCUUGGUUACTT",
            ("lumasiran", 1): "GACUUUCAUCCUGGAAAUAUA",
            ("lumasiran", 2): "UAUAUUUCCAGGAUGAAAGUCCA",
            ("vutrisiran", 1): "UCUUGGUUACAUGAAAUCCCAUC",
        }
        bad = 0
        for key, want in expected.items():
            got = results[key][0]
            ok = got == want
            bad += not ok
            print(f"check {key[0]} strand{key[1]}: {'OK' if ok else 'MISMATCH'} {got}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
