"""Reader of the duplex files `oligolab sirna score` takes: plain or modified notation
(:func:`.chemistry.decode_notation`), validated like every reader (one :class:`~oligolab.errors.InputError`
naming the file, the line and the fix).

Formats:

* a table (tab- or comma-separated) with one duplex per row: ``name`` (or ``id``/``duplex``), ``guide`` (or
  ``antisense``) and optionally ``passenger`` (or ``sense``);
* a table with one strand per row (the ``approved-sirnas.tsv`` layout): ``drug`` (or ``name``), ``strand``
  (sense/antisense), ``sequence`` and optionally ``modified_notation`` (used when given; its bases must be the
  sequence's);
* FASTA (modified notation allowed in the sequence lines): records paired by name, the guide named
  ``<name>_AS`` / ``<name>/antisense`` / ``<name> guide`` and the passenger ``<name>_S`` / ``<name>/sense`` /
  ``<name> passenger`` (or with "antisense"/"sense" in the description).

A duplex without a passenger strand is scored on its guide (the passenger is then taken as the guide's complement
for the passenger-seed figures).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from .candidates import GivenDuplex
from .chemistry import DecodedStrand, decode_notation
from .inputs import table_rows, text_lines

MAX_DUPLEXES = 100_000
GUIDE_NT = (19, 27)  #: guide length range (nt)
PASSENGER_NT = (15, 40)
_GUIDE_COLS = ("guide", "antisense", "as", "antisense_sequence", "guide_strand")
_PASSENGER_COLS = ("passenger", "sense", "s", "sense_sequence", "passenger_strand")
_NAME_COLS = ("name", "id", "duplex", "drug")
_SUFFIX = re.compile(r"^(?P<name>.+?)(?:[_/\-. ](?P<kind>AS|S|antisense|sense|guide|passenger))$", re.IGNORECASE)


def decode(path: Path, text: str, strand: str, name: str, line: int | None, record: str | None = None) -> DecodedStrand:
    """One strand, decoded and length-checked."""
    try:
        d = decode_notation(text)
    except ValueError as exc:
        raise InputError(
            path,
            f"{strand} strand of {name[:40]!r}: {exc}",
            "write bases (A C G U/T) or the "
            "modification notation (a c g u = 2'-OMe, Af = 2'-F, s = PS, dT, (Tgn) GNA, (vinu) 5'-VP)",
            line=line,
            record=record,
        ) from None
    lo, hi = GUIDE_NT if strand == "guide" else PASSENGER_NT
    if not lo <= len(d.bases) <= hi:
        raise InputError(
            path,
            f"{strand} strand of {name[:40]!r} has {len(d.bases)} nt",
            f"give {lo}-{hi} nt ({'the antisense strand, 5->3' if strand == 'guide' else 'the sense strand, 5->3'})",
            line=line,
            record=record,
        )
    return d


def read_duplexes(path: str | Path) -> list[GivenDuplex]:
    """Duplexes of a table or FASTA file (see the module docstring)."""
    path = Path(path)
    first = next((t for _, t in text_lines(path) if t.strip()), "")
    name = path.name.lower().removesuffix(".gz").removesuffix(".xz").removesuffix(".zst")
    fasta = first.startswith(">") or name.endswith((".fa", ".fasta", ".fna", ".fas"))
    out = read_fasta_duplexes(path) if fasta else read_table_duplexes(path)
    if not out:
        raise InputError(path, "no duplex in the file", "give one duplex per row (name, guide, passenger)")
    names = [d.name for d in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise InputError(path, f"duplex name {dup!r} given twice", "give each duplex its own name")
    return out


def read_table_duplexes(path: Path) -> list[GivenDuplex]:
    """Duplexes of a one-duplex-per-row or one-strand-per-row table."""
    header, rows = table_rows(path, "duplex")
    name_col = next((c for c in _NAME_COLS if c in header), None)
    if "strand" in header and "sequence" in header and name_col:
        return strand_rows(path, rows, name_col)
    guide_col = next((c for c in _GUIDE_COLS if c in header), None)
    pass_col = next((c for c in _PASSENGER_COLS if c in header), None)
    if guide_col is None:
        raise InputError(
            path,
            f"duplex table needs a guide (antisense) column; header has {', '.join(header[:12]) or 'nothing'}",
            "add columns name, guide, passenger",
            line=1,
        )
    out = []
    for lineno, row in rows:
        name = (row.get(name_col or "", "") or f"duplex{lineno}").strip()
        g_text = row.get(guide_col, "")
        if not g_text:
            raise InputError(
                path, f"duplex {name[:40]!r} has no guide strand", "give the antisense strand", line=lineno
            )
        p_text = row.get(pass_col or "", "") if pass_col else ""
        guide = decode(path, g_text, "guide", name, lineno)
        passenger = decode(path, p_text, "passenger", name, lineno) if p_text else DecodedStrand("", [], [])
        out.append(GivenDuplex(name, guide, passenger, g_text, p_text, lineno))
        if len(out) > MAX_DUPLEXES:
            raise InputError(path, f"more than {MAX_DUPLEXES:,} duplexes", "split the file", line=lineno)
    return out


def strand_rows(path: Path, rows, name_col: str) -> list[GivenDuplex]:
    """One strand per row (drug, strand, sequence, modified_notation) paired by name."""
    strands: dict[str, dict[str, tuple[str, DecodedStrand, int]]] = {}
    for lineno, row in rows:
        name = row.get(name_col, "").strip()
        kind = row.get("strand", "").lower()
        if kind not in ("sense", "antisense"):
            raise InputError(
                path,
                f"strand {row.get('strand', '')[:30]!r} is not sense or antisense",
                "write sense or antisense",
                line=lineno,
            )
        seq, notation = row.get("sequence", ""), row.get("modified_notation", "")
        strand = "guide" if kind == "antisense" else "passenger"
        plain = decode(path, seq, strand, name, lineno)
        text = notation or seq
        d = decode(path, notation, strand, name, lineno) if notation else plain
        if notation and not d.bases.replace("T", "U").startswith(plain.bases.replace("T", "U")):
            raise InputError(
                path,
                f"{strand} of {name[:40]!r}: notation bases {d.bases} differ from sequence {plain.bases}",
                "make modified_notation spell the same bases",
                line=lineno,
            )
        if kind in strands.setdefault(name, {}):
            raise InputError(path, f"{name[:40]!r} has two {kind} rows", "give one row per strand", line=lineno)
        strands[name][kind] = (text, d, lineno)
    out = []
    for name, s in strands.items():
        if "antisense" not in s:
            continue  # a sense strand alone cannot be scored
        g_text, g, line = s["antisense"]
        p_text, p, _ = s.get("sense", ("", DecodedStrand("", [], []), line))
        out.append(GivenDuplex(name, g, p, g_text, p_text, line))
    return out


def read_fasta_duplexes(path: Path) -> list[GivenDuplex]:
    """Guide and passenger records paired by name (see the module docstring)."""
    records: list[tuple[str, str, str, int]] = []  # (id, description, text, header line)
    for lineno, text in text_lines(path):
        if text.startswith(">"):
            head = text[1:].strip()
            if not head:
                raise InputError(path, "FASTA header without a name", "write >name_AS / >name_S", line=lineno)
            rid, _, desc = head.partition(" ")
            records.append((rid, desc, "", lineno))
        elif text.strip():
            if not records:
                raise InputError(
                    path, "sequence before the first '>' header", "start each record with >name", line=lineno
                )
            rid, desc, seq, line = records[-1]
            records[-1] = (rid, desc, seq + text.strip(), line)
    pairs: dict[str, dict[str, tuple[str, int]]] = {}
    for rid, desc, seq, line in records:
        m = _SUFFIX.match(rid) or _SUFFIX.match(f"{rid} {desc.split(' ')[0]}" if desc else rid)
        kind_text = (m.group("kind") if m else desc).lower()
        kind = (
            "guide"
            if kind_text in ("as", "antisense", "guide") or "antisense" in kind_text
            else "passenger"
            if kind_text in ("s", "sense", "passenger") or "sense" in kind_text
            else ""
        )
        if not kind:
            raise InputError(
                path,
                f"record {rid[:40]!r} is neither a guide nor a passenger",
                "name records <name>_AS (guide) and <name>_S (passenger)",
                line=line,
            )
        name = m.group("name") if m else rid
        if kind in pairs.setdefault(name, {}):
            raise InputError(path, f"two {kind} records for {name[:40]!r}", "give one of each", line=line)
        if not seq:
            raise InputError(path, f"record {rid[:40]!r} has no sequence", "add its sequence", line=line)
        pairs[name][kind] = (seq, line)
    out = []
    for name, p in pairs.items():
        if "guide" not in p:
            raise InputError(
                path, f"{name[:40]!r} has a passenger but no guide record", "add <name>_AS", line=p["passenger"][1]
            )
        g_text, line = p["guide"]
        p_text = p.get("passenger", ("", line))[0]
        out.append(
            GivenDuplex(
                name,
                decode(path, g_text, "guide", name, line, name),
                decode(path, p_text, "passenger", name, line, name) if p_text else DecodedStrand("", [], []),
                g_text,
                p_text,
                line,
            )
        )
    return out
