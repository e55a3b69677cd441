"""Sequences and collections: streaming FASTA/GenBank readers (plain, gz, xz, zst), nucleotide encoding,
IUPAC codes, and sample metadata (lineage, date, ...) joined on the record id.

This is the project's one set of sequence readers; every capability reads genomes, transcripts and
off-target sets through it.
"""

from __future__ import annotations

import bz2
import csv
import datetime as _dt
import gzip
import io
import lzma
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

from .errors import InputError

# ------------------------------------------------------------------------------------------------ codes

#: Text codes used by the engine: 0..3 = A, C, G, T; 4 = unknown (N or any ambiguity code); 5 = separator.
A, C, G, T, UNKNOWN, SEPARATOR = 0, 1, 2, 3, 4, 5

#: IUPAC nucleotide code -> set of bases as a 4-bit mask (A=1, C=2, G=4, T=8).
IUPAC_MASK: dict[str, int] = {
    "A": 1, "C": 2, "G": 4, "T": 8, "U": 8,
    "R": 1 | 4, "Y": 2 | 8, "S": 2 | 4, "W": 1 | 8, "K": 4 | 8, "M": 1 | 2,
    "B": 2 | 4 | 8, "D": 1 | 4 | 8, "H": 1 | 2 | 8, "V": 1 | 2 | 4, "N": 15, "I": 15,
}
MASK_IUPAC: dict[int, str] = {v: k for k, v in IUPAC_MASK.items() if k not in ("U", "I")}
_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVNIacgturyswkmbdhvni", "TGCAAYRSWMKVHDBNNtgcaayrswmkvhdbnn")

_ENCODE = np.full(256, 255, dtype=np.uint8)
for _ch, _code in (("A", A), ("C", C), ("G", G), ("T", T), ("U", T)):
    _ENCODE[ord(_ch)] = _code
    _ENCODE[ord(_ch.lower())] = _code
for _ch in "RYSWKMBDHVN":
    _ENCODE[ord(_ch)] = UNKNOWN
    _ENCODE[ord(_ch.lower())] = UNKNOWN
_DECODE = np.frombuffer(b"ACGTN-", dtype=np.uint8)

#: characters allowed in a genome or transcript sequence (IUPAC plus alignment gaps '-' and '.')
_SEQ_ALLOWED = b"ACGTURYSWKMBDHVNacgturyswkmbdhvn-.*"
_GAP_CHARS = b"-."


def reverse_complement(seq: str) -> str:
    """Reverse complement of an IUPAC DNA/RNA string (U becomes A's partner T)."""
    return seq.translate(_COMPLEMENT)[::-1]


def kmer_code(seq: str) -> int:
    """2-bit packing of an ACGT string (first base most significant): the index of a k-mer in tables."""
    key = 0
    for ch in seq:
        key = (key << 2) | "ACGT".index(ch)
    return key


def encode(seq: bytes | str) -> np.ndarray:
    """Encode a gap-free sequence into engine codes (uint8). Unknown letters must be filtered before."""
    if isinstance(seq, str):
        seq = seq.encode()
    codes = _ENCODE[np.frombuffer(seq, dtype=np.uint8)]
    return codes


def decode(codes: np.ndarray) -> str:
    """Engine codes back to a string (unknown -> N, separator -> '-')."""
    return _DECODE[np.minimum(codes, 5)].tobytes().decode()


def iupac_masks(seq: str) -> np.ndarray:
    """IUPAC string -> per-position 4-bit base masks (uint8)."""
    try:
        return np.array([IUPAC_MASK[ch] for ch in seq.upper()], dtype=np.uint8)
    except KeyError as exc:  # callers validate first; this is a programming error
        raise ValueError(f"not an IUPAC nucleotide code: {exc.args[0]!r}") from None


# ---------------------------------------------------------------------------------------- opening files

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bz2"),
)


def compression_of(path: Path) -> str | None:
    """Compression format from the file's first bytes (None = plain)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def open_binary(path: str | Path) -> BinaryIO:
    """Open a possibly compressed file for streaming reads (gzip, xz, zstd, bz2 detected by magic bytes)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found", "check the path")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty", "give a non-empty file")
    kind = compression_of(path)
    if kind is None:
        return open(path, "rb")
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "bz2":
        return bz2.open(path, "rb")
    import zstandard

    fh = open(path, "rb")
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True), buffer_size=1 << 20)


_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError)
try:
    import zstandard as _zstd

    _DECOMPRESS_ERRORS = _DECOMPRESS_ERRORS + (_zstd.ZstdError,)
except ImportError:  # pragma: no cover
    pass


def _iter_lines(path: Path, max_line: int | None = None) -> Iterator[bytes]:
    """Lines of a possibly compressed file; a truncated or corrupt stream becomes an InputError. With
    ``max_line`` (bytes), a longer line is refused before it is read whole (bounded memory)."""
    kind = compression_of(path) if path.exists() and path.stat().st_size else None
    fh = open_binary(path)
    lineno = 0
    try:
        with fh:
            if max_line is None:
                for lineno, line in enumerate(fh, 1):  # noqa: B007
                    yield line
                return
            for lineno, line in enumerate(iter(lambda: fh.readline(max_line + 1), b""), 1):  # noqa: B007
                if len(line) > max_line:
                    raise InputError(path, f"line longer than {max_line:,} bytes", "check that this is the "
                                     "right file (a text table, one record per line)", line=lineno)
                yield line
    except _DECOMPRESS_ERRORS as exc:
        raise InputError(path, f"the {kind or 'file'} stream is truncated or corrupt after line {lineno} ({exc})",
                         "re-download or re-compress the file") from None


iter_lines = _iter_lines  #: public name: lines (bytes) of a possibly compressed file, InputError when corrupt


# ---------------------------------------------------------------------------------------------- FASTA

@dataclass(slots=True)
class SeqRecord:
    """One sequence: ``seq`` holds the letters as read, upper-cased, alignment gaps removed."""

    id: str
    description: str
    seq: bytes
    line: int = 0  #: line of the header in its file
    aligned_length: int = 0  #: length before gap removal (= alignment columns for aligned input)

    def codes(self) -> np.ndarray:
        return encode(self.seq)

    def text(self) -> str:
        return self.seq.decode()


def _read_blocks(path: Path, size: int = 1 << 22) -> Iterator[bytes]:
    """Decompressed chunks of a file; a truncated or corrupt stream becomes an InputError."""
    kind = compression_of(path) if path.exists() and path.stat().st_size else None
    fh = open_binary(path)
    total = 0
    try:
        with fh:
            while True:
                chunk = fh.read(size)
                if not chunk:
                    break
                total += len(chunk)
                yield chunk
    except _DECOMPRESS_ERRORS as exc:
        raise InputError(path, f"the {kind or 'file'} stream is truncated or corrupt after {total} bytes ({exc})",
                         "re-download or re-compress the file") from None


def read_fasta(path: str | Path, *, keep_gaps: bool = False) -> Iterator[SeqRecord]:
    """Stream FASTA records from a plain or compressed file.

    Alignment gap characters ('-', '.') are removed unless ``keep_gaps``. Raises :class:`InputError` naming
    the file, line and record for a missing header, illegal characters, an empty record or a truncated file.
    Records are cut from large decompressed blocks with bytes operations (no per-line Python loop).
    """
    path = Path(path)
    buf = b""
    line = 1  # line number at the start of ``buf``
    started = False
    n_records = 0
    for chunk in _read_blocks(path):
        buf += chunk
        if not started:
            stripped = buf.lstrip()
            if not stripped:
                continue
            line += buf.count(b"\n", 0, len(buf) - len(stripped))
            if not stripped.startswith(b">"):
                raise InputError(path, "sequence data before the first FASTA header",
                                 "start each record with a '>id' line (is this a FASTA file?)", line=line)
            buf = stripped
            started = True
        cut = buf.rfind(b"\n>")
        if cut < 0:
            continue
        block, buf = buf[: cut + 1], buf[cut + 1:]
        for rec in _parse_block(path, block, line, keep_gaps):
            n_records += 1
            yield rec
        line += block.count(b"\n")
    if started and buf.strip():
        for rec in _parse_block(path, buf, line, keep_gaps):
            n_records += 1
            yield rec
    if n_records == 0:
        raise InputError(path, "no FASTA records found", "give a FASTA file whose records start with '>'")


def _parse_block(path: Path, block: bytes, line: int, keep_gaps: bool) -> Iterator[SeqRecord]:
    """Records of a block that starts with '>' and holds whole records; ``line`` is its first line."""
    for part in block[1:].split(b"\n>"):
        header, _, body = part.partition(b"\n")
        rid, _, desc = header.decode(errors="replace").strip().partition(" ")
        raw = body.translate(None, b"\r\n \t").upper()
        if not rid:
            raise InputError(path, "header has no identifier", "write an id after '>'", line=line)
        bad = raw.translate(None, _SEQ_ALLOWED)
        if bad:
            offset = raw.index(bad[:1])
            raise InputError(path, f"illegal character {chr(bad[0])!r} at sequence position {offset + 1}",
                             "sequences may contain only IUPAC nucleotide codes and '-'", line=line, record=rid)
        aligned_length = len(raw)
        if not keep_gaps:
            raw = raw.translate(None, _GAP_CHARS)
        if b"*" in raw:
            raw = raw.replace(b"*", b"")
        if not raw:
            raise InputError(path, "record has no sequence", "remove the empty record or add its sequence",
                             line=line, record=rid)
        yield SeqRecord(rid, desc.strip(), raw, line, aligned_length)
        line += part.count(b"\n") + 1


def is_genbank(path: str | Path) -> bool:
    """Whether a (possibly compressed) sequence file is GenBank rather than FASTA (first line 'LOCUS')."""
    for line in _iter_lines(Path(path)):
        if line.strip():
            return line.startswith(b"LOCUS")
    return False


# -------------------------------------------------------------------------------------------- GenBank

@dataclass
class Feature:
    """A GenBank feature in 0-based half-open coordinates on the record."""

    kind: str
    start: int
    end: int
    strand: int
    qualifiers: dict[str, list[str]]

    @property
    def name(self) -> str:
        for key in ("gene", "product", "locus_tag", "note"):
            if key in self.qualifiers:
                return self.qualifiers[key][0]
        return self.kind


@dataclass
class GenBankRecord:
    id: str
    description: str
    seq: bytes
    features: list[Feature] = field(default_factory=list)


def read_genbank(path: str | Path) -> list[GenBankRecord]:
    """Read GenBank records (Biopython's parser) with their features."""
    from Bio import SeqIO

    path = Path(path)
    records = []
    try:
        with open_binary(path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace")
            for rec in SeqIO.parse(text, "genbank"):
                feats = []
                for f in rec.features:
                    try:
                        start, end = int(f.location.start), int(f.location.end)
                    except (TypeError, ValueError):
                        continue
                    feats.append(Feature(f.type, start, end, f.location.strand or 1,
                                         {k: list(v) for k, v in f.qualifiers.items()}))
                records.append(GenBankRecord(rec.id, rec.description, bytes(rec.seq).upper(), feats))
    except (ValueError, AssertionError) as exc:
        raise InputError(path, f"not a readable GenBank file ({exc})", "give a GenBank flat file") from None
    if not records:
        raise InputError(path, "no GenBank records found", "give a GenBank flat file starting with LOCUS")
    return records


# ------------------------------------------------------------------------------------------- metadata

_ID_COLUMNS = ("id", "strain", "name", "seqname", "accession", "sequence_name", "taxon")
_LINEAGE_COLUMNS = ("lineage", "pango_lineage", "pangolin_lineage", "pango", "clade")
_DATE_COLUMNS = ("date", "collection_date", "sample_date")
_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2}|XX|xx))?(?:-(\d{2}|XX|xx))?$")


def parse_date(text: str) -> tuple[_dt.date | None, str]:
    """Parse an ISO date, allowing month or year precision (2020-03, 2020-03-XX, 2020).

    Returns (date, precision) with precision 'day', 'month', 'year' or '' for an empty value; raises
    ValueError for text that is not a date.
    """
    text = text.strip()
    if text in ("", "?", "NA", "na", "missing", "unknown"):
        return None, ""
    m = _DATE_RE.match(text)
    if not m:
        raise ValueError(text)
    year = int(m.group(1))
    month = m.group(2)
    day = m.group(3)
    if month is None or month.upper() == "XX":
        return _dt.date(year, 1, 1), "year"
    if day is None or day.upper() == "XX":
        return _dt.date(year, int(month), 1), "month"
    return _dt.date(year, int(month), int(day)), "day"


@dataclass
class Metadata:
    """Per-record metadata: ``rows[id]`` is a dict of the file's columns plus parsed ``_date``/``_month``."""

    path: Path | None
    id_column: str
    lineage_column: str | None
    date_column: str | None
    rows: dict[str, dict[str, object]]

    def lineage(self, record_id: str) -> str | None:
        row = self.rows.get(record_id)
        if row is None or self.lineage_column is None:
            return None
        value = row.get(self.lineage_column)
        return str(value) if value not in (None, "", "?") else None

    def date(self, record_id: str) -> _dt.date | None:
        row = self.rows.get(record_id)
        return None if row is None else row.get("_date")  # type: ignore[return-value]

    def month(self, record_id: str) -> str | None:
        row = self.rows.get(record_id)
        return None if row is None else row.get("_month")  # type: ignore[return-value]


def _pick(columns: list[str], wanted: Iterable[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for name in wanted:
        if name in lower:
            return lower[name]
    return None


def read_metadata(path: str | Path, *, id_column: str | None = None, lineage_column: str | None = None,
                  date_column: str | None = None) -> Metadata:
    """Read a TSV/CSV metadata table; dates are parsed (an unparsable date is an error naming the line)."""
    path = Path(path)
    lines = (line.decode("utf-8", errors="replace") for line in _iter_lines(path))
    first = next(lines, "")
    delimiter = "\t" if "\t" in first else ","
    reader = csv.reader(_chain_first(first, lines), delimiter=delimiter)
    header = next(reader, None)
    if not header or len(header) < 2:
        raise InputError(path, "metadata has no header row with at least two columns",
                         "give a TSV/CSV with columns such as id, lineage, date", line=1)
    header = [h.strip() for h in header]
    idc = id_column or _pick(header, _ID_COLUMNS) or header[0]
    if idc not in header:
        raise InputError(path, f"no column '{idc}'", f"choose one of: {', '.join(header)}", line=1)
    linc = lineage_column or _pick(header, _LINEAGE_COLUMNS)
    datec = date_column or _pick(header, _DATE_COLUMNS)
    rows: dict[str, dict[str, object]] = {}
    for lineno, values in enumerate(reader, 2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise InputError(path, f"{len(values)} fields where the header has {len(header)}",
                             "check the delimiters on this line", line=lineno)
        row: dict[str, object] = dict(zip(header, (v.strip() for v in values)))
        rid = str(row[idc])
        if datec is not None:
            try:
                date, precision = parse_date(str(row[datec]))
            except ValueError:
                raise InputError(path, f"unparsable date {row[datec]!r} in column '{datec}'",
                                 "write dates as YYYY-MM-DD (or YYYY-MM, YYYY-MM-XX)", line=lineno,
                                 record=rid) from None
            row["_date"] = date
            row["_month"] = date.strftime("%Y-%m") if date and precision in ("day", "month") else None
        rows[rid] = row
    return Metadata(path, idc, linc, datec, rows)


def _chain_first(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def warn_missing_ids(metadata: Metadata, seen_ids: set[str]) -> list[str]:
    """Warn (not fail) when metadata names ids that are absent from the sequences; returns them."""
    missing = sorted(set(metadata.rows) - seen_ids)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        warnings.warn(f"{metadata.path}: {len(missing)} metadata ids are not in the FASTA ({shown})",
                      stacklevel=2)
    return missing
