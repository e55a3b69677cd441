"""Assays and their oligos: readers for the project's assay table (TSV/CSV), the published-assay table
shipped with the SARS-CoV-2 data (covidcg format) and primal-scheme BED files, with validation that names the
file and line of every problem.

An *assay* is a set of oligos that work together (PCR primers and probe, LAMP primer set, RPA primers with a
CRISPR guide, ...). Roles are a fixed vocabulary; the assay's *kind* follows from its roles.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .sequences import IUPAC_MASK, MAX_TABLE_LINE, csv_records, iter_lines

MIN_OLIGO_NT = 10

#: canonical roles and what they are
ROLES = {
    "forward": "forward primer (binds the bottom strand, reads like the top strand)",
    "reverse": "reverse primer",
    "probe": "hydrolysis or other detection probe (either strand)",
    "F3": "LAMP outer forward primer",
    "B3": "LAMP outer backward primer",
    "FIP": "LAMP forward inner primer (F1c + F2)",
    "BIP": "LAMP backward inner primer (B1c + B2)",
    "LF": "LAMP loop forward primer",
    "LB": "LAMP loop backward primer",
    "crRNA": "CRISPR guide spacer (Cas12a: as the protospacer on the PAM strand; Cas13a: the spacer itself)",
}
PRIMER_ROLES = {"forward", "reverse", "F3", "B3", "FIP", "BIP", "LF", "LB", "F2", "F1c", "B2", "B1c"}

_ROLE_ALIASES = {
    "forward": "forward",
    "fwd": "forward",
    "f": "forward",
    "forward primer": "forward",
    "left": "forward",
    "reverse": "reverse",
    "rev": "reverse",
    "r": "reverse",
    "reverse primer": "reverse",
    "right": "reverse",
    "probe": "probe",
    "p": "probe",
    "f3": "F3",
    "b3": "B3",
    "fip": "FIP",
    "bip": "BIP",
    "lf": "LF",
    "lb": "LB",
    "loopf": "LF",
    "loopb": "LB",
    "crrna": "crRNA",
    "guide": "crRNA",
    "grna": "crRNA",
    "spacer": "crRNA",
    "cas12a": "crRNA",
    "cas13a": "crRNA",
    "crrna spacer": "crRNA",
}
_ROLE_DEFAULT_ENZYME = {"cas12a": "LbCas12a", "cas13a": "LwaCas13a"}


@dataclass
class Oligo:
    """One oligo. ``sequence`` is the part that binds the target (IUPAC DNA, 5'->3'); ``tail`` is a
    non-binding 5' extension (e.g. a T7 promoter), written in lower case in the input."""

    name: str
    assay: str
    role: str
    sequence: str
    tail: str = ""
    enzyme: str | None = None
    source: str = ""  #: "file:line"
    notes: str = ""
    parts: tuple[str, str] | None = None  #: FIP/BIP halves (F1c|F2 or B1c|B2) when given with '|'

    @property
    def ordered_sequence(self) -> str:
        seq = self.sequence if self.parts is None else self.parts[0] + self.parts[1]
        return self.tail.lower() + seq

    @property
    def is_degenerate(self) -> bool:
        return any(ch not in "ACGT" for ch in self.sequence)


@dataclass
class Assay:
    name: str
    oligos: list[Oligo] = field(default_factory=list)
    panel: str = ""  #: the file or institution the assay came from
    max_amplicon: int | None = None

    @property
    def kind(self) -> str:
        roles = {o.role for o in self.oligos}
        if "crRNA" in roles:
            return "crispr"
        if roles & {"FIP", "BIP"}:
            return "lamp"
        if "forward" in roles and "reverse" in roles:
            return "pcr"
        return "oligos"

    def by_role(self, *roles: str) -> list[Oligo]:
        return [o for o in self.oligos if o.role in roles]


@dataclass
class AssaySet:
    assays: list[Assay]

    @property
    def oligos(self) -> list[Oligo]:
        return [o for a in self.assays for o in a.oligos]

    def __len__(self) -> int:
        return len(self.assays)

    def assay(self, name: str) -> Assay:
        for a in self.assays:
            if a.name == name:
                return a
        raise KeyError(name)


# ------------------------------------------------------------------------------------------ validation


def _clean_sequence(path: Path, line: int, name: str, raw: str, role: str) -> tuple[str, str, tuple | None]:
    """Validate an oligo sequence: returns (binding sequence, 5' tail, FIP/BIP parts)."""
    text = re.sub(r"\s+", "", raw)
    if not text:
        raise InputError(path, f"oligo '{name}' has no sequence", "write the sequence 5'->3'", line=line)
    text = text.replace("5'-", "").replace("-3'", "")
    core = text.lstrip(string.ascii_lowercase)  # a lower-case 5' tail, then the oligo
    tail = text[: len(text) - len(core)]
    parts = None
    if "|" in core:
        if role not in ("FIP", "BIP"):
            raise InputError(
                path,
                f"oligo '{name}' has '|' but role {role}",
                "only FIP/BIP may mark their two parts with '|'",
                line=line,
            )
        halves = core.split("|")
        if len(halves) != 2 or not all(halves):
            raise InputError(
                path,
                f"oligo '{name}' must have exactly one '|' between two parts",
                "write FIP as F1c|F2 and BIP as B1c|B2",
                line=line,
            )
        parts = (halves[0].upper(), halves[1].upper())
        core = halves[0] + halves[1]
    core = core.upper().replace("U", "T")
    bad = sorted({ch for ch in core if ch not in IUPAC_MASK})
    if bad:
        raise InputError(
            path,
            f"oligo '{name}' has illegal character(s) {''.join(bad)!r}",
            "use IUPAC nucleotide codes (A C G T U R Y S W K M B D H V N); lower case only for a 5' tail",
            line=line,
        )
    if len(core) < MIN_OLIGO_NT:
        raise InputError(
            path,
            f"oligo '{name}' has {len(core)} nt; at least {MIN_OLIGO_NT} nt are needed",
            "check the sequence or drop the oligo",
            line=line,
        )
    if parts is not None:
        parts = (parts[0].replace("U", "T"), parts[1].replace("U", "T"))
    return core, tail.upper().replace("U", "T"), parts


def _normalise_role(path: Path, line: int, name: str, raw: str) -> tuple[str, str | None]:
    key = raw.strip().lower()
    if key not in _ROLE_ALIASES:
        raise InputError(path, f"unknown role {raw!r} for oligo '{name}'", f"use one of: {', '.join(ROLES)}", line=line)
    return _ROLE_ALIASES[key], _ROLE_DEFAULT_ENZYME.get(key)


def validate(assays: list[Assay], lines: dict[str, tuple[Path, int]]) -> AssaySet:
    """Check names are unique and each assay's roles make sense."""
    seen: dict[str, str] = {}
    for assay in assays:
        for o in assay.oligos:
            if o.name in seen:
                path, line = lines[o.name + "\0" + assay.name]
                raise InputError(
                    path,
                    f"duplicate oligo name '{o.name}' (also in {seen[o.name]})",
                    "give every oligo a unique name",
                    line=line,
                )
            seen[o.name] = o.source
        roles = [o.role for o in assay.oligos]
        first = assay.oligos[0]
        path, line = lines[first.name + "\0" + assay.name]
        if "reverse" in roles and "forward" not in roles:
            raise InputError(
                path,
                f"assay '{assay.name}' has a reverse primer but no forward primer",
                "add the forward primer or fix the roles",
                line=line,
            )
        if "forward" in roles and "reverse" not in roles and "crRNA" not in roles:
            raise InputError(
                path,
                f"assay '{assay.name}' has a forward primer but no reverse primer",
                "add the reverse primer or fix the roles",
                line=line,
            )
        if ("FIP" in roles) != ("BIP" in roles) or (("FIP" in roles) and not {"F3", "B3"} <= set(roles)):
            raise InputError(
                path, f"LAMP assay '{assay.name}' needs F3, B3, FIP and BIP", "add the missing LAMP primers", line=line
            )
        for o in assay.oligos:
            if o.role == "crRNA" and not o.enzyme:
                p, ln = lines[o.name + "\0" + assay.name]
                raise InputError(
                    p,
                    f"crRNA '{o.name}' names no enzyme",
                    "add an 'enzyme' column (e.g. LbCas12a, LwaCas13a) or use role cas12a/cas13a",
                    line=ln,
                )
    return AssaySet(assays)


# ---------------------------------------------------------------------------------------------- readers


def read_assays(paths: list[str | Path]) -> AssaySet:
    """Read one or more assay files (format detected per file) into one validated set."""
    assays: list[Assay] = []
    lines: dict[str, tuple[Path, int]] = {}
    for p in paths:
        path = Path(p)
        for assay, oligo_lines in _read_one(path):
            assays.append(assay)
            lines.update(oligo_lines)
    if not assays:
        raise InputError(None, "no assays given", "pass --assays FILE")
    return validate(assays, lines)


def _text_lines(path: Path) -> list[str]:
    """The file's lines (a BOM, line ends and a final carriage return removed); only '\\n' ends a line, so a
    stray carriage return stays inside its line and is refused there."""
    lines = [raw.decode("utf-8", errors="replace").rstrip("\n") for raw in iter_lines(path, max_line=MAX_TABLE_LINE)]
    if lines:
        lines[0] = lines[0].removeprefix("\ufeff")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _read_one(path: Path) -> list[tuple[Assay, dict[str, tuple[Path, int]]]]:
    text = _text_lines(path)
    first = next((ln for ln in text if ln.strip() and not ln.startswith("#")), "")
    fields_tab = first.split("\t")
    if len(fields_tab) >= 6 and re.match(r"^\d+$", fields_tab[1].strip() or "x"):
        return _read_bed(path, text)
    if first.lower().startswith("institution,") and "description" in first.lower():
        return _read_covidcg(path, text)
    return _read_table(path, text)


def _group(
    path: Path, rows: list[tuple[int, str, Oligo]], panel: str, max_amp: dict[str, int] | None = None
) -> list[tuple[Assay, dict[str, tuple[Path, int]]]]:
    order: list[str] = []
    by_assay: dict[str, Assay] = {}
    lines: dict[str, dict[str, tuple[Path, int]]] = {}
    for line, assay_name, oligo in rows:
        if assay_name not in by_assay:
            by_assay[assay_name] = Assay(assay_name, [], panel, (max_amp or {}).get(assay_name))
            lines[assay_name] = {}
            order.append(assay_name)
        key = oligo.name + "\0" + assay_name
        if key in lines[assay_name]:
            raise InputError(
                path,
                f"duplicate oligo name '{oligo.name}' in assay '{assay_name}'",
                "give every oligo a unique name",
                line=line,
            )
        by_assay[assay_name].oligos.append(oligo)
        lines[assay_name][key] = (path, line)
    return [(by_assay[a], lines[a]) for a in order]


_COLUMN_ALIASES = {
    "assay": "assay",
    "assay_name": "assay",
    "target": "assay",
    "set": "assay",
    "oligo": "oligo",
    "name": "oligo",
    "oligo_name": "oligo",
    "id": "oligo",
    "role": "role",
    "type": "role",
    "kind": "role",
    "sequence": "sequence",
    "seq": "sequence",
    "sequence_5_3": "sequence",
    "enzyme": "enzyme",
    "max_amplicon": "max_amplicon",
    "notes": "notes",
    "panel": "panel",
}


def _read_table(path: Path, text: list[str]) -> list[tuple[Assay, dict[str, tuple[Path, int]]]]:
    """The project's assay table: columns assay, oligo, role, sequence (+ enzyme, max_amplicon, notes)."""
    header_idx = next((i for i, ln in enumerate(text) if ln.strip() and not ln.startswith("#")), None)
    if header_idx is None:
        raise InputError(path, "no header row", "start with a header: assay, oligo, role, sequence", line=1)
    delimiter = "\t" if "\t" in text[header_idx] else ","
    reader = ((header_idx + n, values) for n, values in csv_records(path, text[header_idx:], delimiter))
    header = [h.strip().lower().replace(" ", "_").replace("'", "").replace("-", "_") for h in next(reader)[1]]
    columns = {}
    for i, h in enumerate(header):
        if h in _COLUMN_ALIASES and _COLUMN_ALIASES[h] not in columns:
            columns[_COLUMN_ALIASES[h]] = i
    missing = [c for c in ("assay", "oligo", "role", "sequence") if c not in columns]
    if missing:
        raise InputError(
            path,
            f"missing column(s) {', '.join(missing)}",
            "the header needs: assay, oligo, role, sequence (optional: enzyme, max_amplicon, notes)",
            line=header_idx + 1,
        )
    rows: list[tuple[int, str, Oligo]] = []
    max_amp: dict[str, int] = {}
    panel = path.name
    for line, values in reader:
        if not values or all(not v.strip() for v in values) or values[0].startswith("#"):
            continue
        if len(values) < len(header):
            values = values + [""] * (len(header) - len(values))

        def get(col: str, values: list[str] = values) -> str:
            return values[columns[col]].strip() if col in columns else ""

        name = get("oligo")
        assay = get("assay")
        if not name or not assay:
            raise InputError(path, "row without an assay or oligo name", "fill the assay and oligo columns", line=line)
        role, default_enzyme = _normalise_role(path, line, name, get("role"))
        seq, tail, parts = _clean_sequence(path, line, name, get("sequence"), role)
        enzyme = get("enzyme") or default_enzyme
        if get("max_amplicon"):
            try:
                max_amp[assay] = int(get("max_amplicon"))
            except ValueError:
                raise InputError(
                    path,
                    f"max_amplicon {get('max_amplicon')!r} is not a whole number",
                    "give the maximum amplicon length in nt",
                    line=line,
                ) from None
        rows.append(
            (
                line,
                assay,
                Oligo(
                    name,
                    assay,
                    role,
                    seq,
                    tail,
                    enzyme if role == "crRNA" else None,
                    f"{path.name}:{line}",
                    get("notes"),
                    parts,
                ),
            )
        )
    if not rows:
        raise InputError(path, "no oligos found", "add rows: assay, oligo, role, sequence")
    return _group(path, rows, panel, max_amp)


_COVIDCG_ROLE = re.compile(
    r"(?:,|/)?\s*(?:(Seq),\s*)?"
    r"(Forward Primer|Reverse Primer|Forward|Reverse|Probe(?:\s*\d+)?)\s*$",
    re.IGNORECASE,
)


def _read_covidcg(path: Path, text: list[str]) -> list[tuple[Assay, dict[str, tuple[Path, int]]]]:
    """The published RT-qPCR assay table (covidcg primers.csv layout): the assay is the description with
    its role words removed, prefixed by the institution."""
    records = csv_records(path, text, ",")
    header = next(records, (1, []))[1]
    rows: list[tuple[int, str, Oligo]] = []
    for line, values in records:
        if not values:
            continue
        row = dict(zip(header, values))
        name = (row.get("Name") or "").strip()
        desc = (row.get("Description") or "").strip()
        if not name:
            raise InputError(path, "row without a Name", "fill the Name column", line=line)
        m = _COVIDCG_ROLE.search(desc)
        if not m:
            raise InputError(
                path,
                f"cannot tell the role of '{name}' from its description {desc!r}",
                "end the description with Forward Primer, Reverse Primer or Probe",
                line=line,
            )
        role_word = m.group(2).lower()
        role = (
            "probe" if role_word.startswith("probe") else ("forward" if role_word.startswith("forward") else "reverse")
        )
        stem = desc[: m.start()].strip(" ,/")
        if m.group(1):
            stem = f"{stem}, Seq"
        institution = (row.get("Institution") or "").split(",")[0].strip()
        assay = f"{institution}: {stem}" if institution else stem
        seq, tail, parts = _clean_sequence(path, line, name, row.get("Sequence") or "", role)
        notes = "; ".join(f"{k}={row[k]}" for k in ("Start", "End", "Label", "Final Conc", "Source") if row.get(k))
        rows.append((line, assay, Oligo(name, assay, role, seq, tail, None, f"{path.name}:{line}", notes)))
    if not rows:
        raise InputError(path, "no oligos found", "add rows")
    return _group(path, rows, path.name)


_BED_NAME = re.compile(r"^(?P<amplicon>.+?)_(?P<side>LEFT|RIGHT)(?:_(?P<alt>[A-Za-z0-9]+))?$")


def _read_bed(path: Path, text: list[str]) -> list[tuple[Assay, dict[str, tuple[Path, int]]]]:
    """A primal-scheme primer BED (chrom, start, end, name, pool, strand, sequence); one assay per amplicon,
    named after the scheme file (e.g. 'artic-v5.3.2 SARS-CoV-2_1')."""
    rows: list[tuple[int, str, Oligo]] = []
    panel = re.sub(r"\.(primer\.)?bed$", "", path.name)
    for line, raw in enumerate(text, 1):
        if not raw.strip() or raw.startswith(("#", "track", "browser")):
            continue
        f = raw.rstrip("\n").split("\t")
        if len(f) < 7:
            raise InputError(
                path,
                f"{len(f)} columns; a primer BED needs 7 (chrom start end name pool strand sequence)",
                "use a primal-scheme primer.bed with the sequence column",
                line=line,
            )
        name = f[3].strip()
        m = _BED_NAME.match(name)
        if not m:
            raise InputError(
                path,
                f"primer name {name!r} does not end in _LEFT or _RIGHT",
                "name primers AMPLICON_LEFT / AMPLICON_RIGHT (optionally _alt1)",
                line=line,
            )
        role = "forward" if m.group("side") == "LEFT" else "reverse"
        seq, tail, parts = _clean_sequence(path, line, name, f[6], role)
        notes = f"pool={f[4].strip()}; bed={f[0]}:{f[1]}-{f[2]}{f[5]}"
        assay = f"{panel} {m.group('amplicon')}"
        rows.append((line, assay, Oligo(name, assay, role, seq, tail, None, f"{path.name}:{line}", notes)))
    if not rows:
        raise InputError(path, "no primers found", "give a primal-scheme primer BED")
    return _group(path, rows, panel)
