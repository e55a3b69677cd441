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
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import InputError

# ------------------------------------------------------------------------------------------------ codes

#: Text codes used by the engine: 0..3 = A, C, G, T; 4 = unknown (N or any ambiguity code); 5 = separator.
A, C, G, T, UNKNOWN, SEPARATOR = 0, 1, 2, 3, 4, 5

#: IUPAC nucleotide code -> set of bases as a 4-bit mask (A=1, C=2, G=4, T=8).
IUPAC_MASK: dict[str, int] = {
    "A": 1,
    "C": 2,
    "G": 4,
    "T": 8,
    "U": 8,
    "R": 1 | 4,
    "Y": 2 | 8,
    "S": 2 | 4,
    "W": 1 | 8,
    "K": 4 | 8,
    "M": 1 | 2,
    "B": 2 | 4 | 8,
    "D": 1 | 4 | 8,
    "H": 1 | 2 | 8,
    "V": 1 | 2 | 4,
    "N": 15,
    "I": 15,
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
_ENCODE_TABLE = _ENCODE.tobytes()
_UPPER = bytes(range(256)).upper()  #: bytes.translate table of bytes.upper
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
    if isinstance(seq, (bytes, bytearray)):  # bytes.translate: 4x faster than indexing a lookup array
        return np.frombuffer(bytearray(seq.translate(_ENCODE_TABLE)), dtype=np.uint8)
    return _ENCODE[np.frombuffer(seq, dtype=np.uint8)]


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
#: file name suffixes that promise a compression (the content decides how a file is read)
_SUFFIX_KIND = {
    ".gz": "gzip",
    ".bgz": "gzip",
    ".gzip": "gzip",
    ".xz": "xz",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".bz2": "bz2",
}
_ZSTD_IN = 1 << 16  #: compressed bytes fed to the zstd decoder at a time (bounds the output of one step)


class CorruptStream(Exception):
    """A compressed stream that ends inside a frame or member, or fails its integrity check."""


def compression_of(path: Path) -> str | None:
    """Compression format from the file's first bytes (None = plain)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


class _ZstdFrames(io.RawIOBase):
    """Decompressed zstd data, frame after frame, checked to the end: input that stops inside a frame raises
    :class:`CorruptStream`, and each frame's content checksum (when the frame has one) is verified."""

    def __init__(self, raw: BinaryIO):
        import zstandard

        self._zstd = zstandard
        self.raw = raw
        self._dec = zstandard.ZstdDecompressor().decompressobj()
        self._in_frame = False
        self._out = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not len(self._out):
            if self._eof:
                return 0
            data = self.raw.read(_ZSTD_IN)
            if not data:
                self._eof = True
                if self._in_frame:
                    raise CorruptStream("the last zstd frame is cut short")
                return 0
            self._out = memoryview(self._feed(data))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _feed(self, data: bytes) -> bytes:
        parts = []
        while data:
            self._in_frame = True
            parts.append(self._dec.decompress(data))
            if not self._dec.eof:
                break
            data = self._dec.unused_data
            self._dec = self._zstd.ZstdDecompressor().decompressobj()
            self._in_frame = False
        return b"".join(parts)

    def close(self) -> None:
        self.raw.close()
        super().close()


def _open_checked(path: Path) -> tuple[BinaryIO, BinaryIO, str | None]:
    """(decompressed stream, the raw file under it, compression) for a file; the compression comes from the
    content, and a name that promises another one gives a warning."""
    if not path.exists():
        raise InputError(path, "file not found", "check the path")
    if path.is_dir():
        raise InputError(path, "is a folder, not a file", "give a file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty", "give a non-empty file")
    kind = compression_of(path)
    promised = _SUFFIX_KIND.get(path.suffix.lower())
    if promised is not None and promised != kind:
        warnings.warn(
            f"{path}: named {path.suffix} but {kind + '-compressed' if kind else 'not compressed'}; "
            "read by its content",
            stacklevel=3,
        )
    raw = open(path, "rb")  # noqa: SIM115 (returned: the caller closes it)
    if kind is None:
        return raw, raw, None
    if kind == "gzip":  # the gzip module checks each member's CRC-32 and length
        stream: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    elif kind == "xz":  # lzma checks the stream's integrity check (CRC-32/64 or SHA-256)
        stream = lzma.LZMAFile(raw, "rb")  # type: ignore[assignment]  # noqa: SIM115 (returned)
    elif kind == "bz2":  # bz2 checks each block's CRC
        stream = bz2.BZ2File(raw, "rb")  # type: ignore[assignment]
    else:
        stream = io.BufferedReader(_ZstdFrames(raw), buffer_size=1 << 20)
    return stream, raw, kind


def open_binary(path: str | Path) -> BinaryIO:
    """Open a possibly compressed file for streaming reads (gzip, xz, zstd, bz2 detected by magic bytes).
    Reading a damaged stream raises one of :data:`DECOMPRESS_ERRORS` (see :func:`corrupt_stream_error`)."""
    return _open_checked(Path(path))[0]


DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    lzma.LZMAError,
    gzip.BadGzipFile,
    zlib.error,
    CorruptStream,
    OSError,
)
try:
    import zstandard as _zstd

    DECOMPRESS_ERRORS = DECOMPRESS_ERRORS + (_zstd.ZstdError,)
except ImportError:  # pragma: no cover
    pass


def corrupt_stream_error(path: Path, kind: str | None, raw: BinaryIO, exc: BaseException) -> InputError:
    """One line for a damaged or truncated file, naming how far into the file (compressed bytes) it broke.
    A plain file's OS error (the disk failed under it) is re-raised as it is."""
    if kind is None and not isinstance(exc, (EOFError, CorruptStream)):
        raise exc
    try:
        offset = raw.tell()
    except (OSError, ValueError):
        offset = None
    where = f" at byte {offset:,} of {path.stat().st_size:,}" if offset is not None else ""
    what = f"the {kind} stream" if kind else "the file"
    detail = str(exc) or type(exc).__name__
    return InputError(path, f"{what} is truncated or corrupt{where} ({detail})", "re-download or re-compress the file")


def iter_lines(path: Path, max_line: int | None = None) -> Iterator[bytes]:
    """Lines of a possibly compressed file; a truncated or corrupt stream becomes an InputError. With
    ``max_line`` (bytes), a longer line is refused before it is read whole (bounded memory)."""
    fh, raw, kind = _open_checked(path)
    read = fh.readline if max_line is None else (lambda: fh.readline(max_line + 1))
    with fh, raw:
        lineno = 0
        while True:
            try:
                line = read()
            except DECOMPRESS_ERRORS as exc:
                raise corrupt_stream_error(path, kind, raw, exc) from None
            if not line:
                return
            lineno += 1
            if max_line is not None and len(line) > max_line:
                raise InputError(
                    path,
                    f"line longer than {max_line:,} bytes",
                    "check that this is the right file (a text table, one record per line)",
                    line=lineno,
                )
            yield line


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
    """Decompressed chunks of a file, read to its end; a truncated or corrupt stream becomes an InputError."""
    fh, raw, kind = _open_checked(path)
    with fh, raw:
        while True:
            try:
                chunk = fh.read(size)
            except DECOMPRESS_ERRORS as exc:
                raise corrupt_stream_error(path, kind, raw, exc) from None
            if not chunk:
                break
            yield chunk


MAX_RECORD_BYTES = 1 << 30  #: longest FASTA record text (1 GiB; the longest human chromosome is 0.25 Gb)


def read_fasta(path: str | Path, *, keep_gaps: bool = False) -> Iterator[SeqRecord]:
    """Stream FASTA records from a plain or compressed file, read (and for compressed files checked) to its end.

    Alignment gap characters ('-', '.') are removed unless ``keep_gaps``. Raises :class:`InputError` naming
    the file, line and record for a missing header, illegal characters, an empty record, a record longer than
    :data:`MAX_RECORD_BYTES` or a truncated file. Records are cut from large decompressed blocks with bytes
    operations (no per-line Python loop); a long record is joined once, not grown chunk by chunk.
    """
    path = Path(path)
    pending: list[bytes] = []  # text of the record(s) not yet complete
    size = 0
    line = 1  # line number at the start of ``pending``
    n_records = 0
    for chunk in _read_blocks(path):
        if not pending:
            stripped = chunk.lstrip()
            if not stripped:
                line += chunk.count(b"\n")
                continue
            if n_records == 0:
                line += chunk.count(b"\n", 0, len(chunk) - len(stripped))
                if not stripped.startswith(b">"):
                    raise InputError(
                        path,
                        "sequence data before the first FASTA header",
                        "start each record with a '>id' line (is this a FASTA file?)",
                        line=line,
                    )
                chunk = stripped
        cut = chunk.rfind(b"\n>")
        between = cut < 0 and bool(pending) and pending[-1].endswith(b"\n") and chunk.startswith(b">")
        if cut < 0 and not between:  # no record ends in this chunk
            pending.append(chunk)
            size += len(chunk)
            if size > MAX_RECORD_BYTES:
                raise InputError(
                    path,
                    f"a record longer than {MAX_RECORD_BYTES:,} bytes",
                    "split the sequence into records of at most 1 Gb",
                    line=line,
                )
            continue
        block = b"".join(pending) + chunk[: cut + 1]
        pending, size = [chunk[cut + 1 :]], len(chunk) - cut - 1
        for rec in _parse_block(path, block, line, keep_gaps):
            n_records += 1
            yield rec
        line += block.count(b"\n")
    rest = b"".join(pending)
    if rest.strip():
        for rec in _parse_block(path, rest, line, keep_gaps):
            n_records += 1
            yield rec
    if n_records == 0:
        raise InputError(path, "no FASTA records found", "give a FASTA file whose records start with '>'")


def _parse_block(path: Path, block: bytes, line: int, keep_gaps: bool) -> Iterator[SeqRecord]:
    """Records of a block that starts with '>' and holds whole records; ``line`` is its first line."""
    for part in block[1:].split(b"\n>"):
        header, _, body = part.partition(b"\n")
        rid, _, desc = header.decode(errors="replace").strip().partition(" ")
        raw = body.translate(_UPPER, b"\r\n \t")  # line breaks out and upper case in one pass
        if not rid:
            raise InputError(path, "header has no identifier", "write an id after '>'", line=line)
        bad = raw.translate(None, _SEQ_ALLOWED)
        if bad:
            offset = raw.index(bad[:1])
            raise InputError(
                path,
                f"illegal character {chr(bad[0])!r} at sequence position {offset + 1}",
                "sequences may contain only IUPAC nucleotide codes and '-'",
                line=line,
                record=rid,
            )
        aligned_length = len(raw)
        if not keep_gaps:
            raw = raw.translate(None, _GAP_CHARS)
        if b"*" in raw:
            raw = raw.replace(b"*", b"")
        if not raw:
            raise InputError(
                path, "record has no sequence", "remove the empty record or add its sequence", line=line, record=rid
            )
        yield SeqRecord(rid, desc.strip(), raw, line, aligned_length)
        line += part.count(b"\n") + 1


def is_genbank(path: str | Path) -> bool:
    """Whether a (possibly compressed) sequence file is GenBank rather than FASTA (first line 'LOCUS')."""
    for line in iter_lines(Path(path)):
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
                    feats.append(
                        Feature(
                            f.type, start, end, f.location.strand or 1, {k: list(v) for k, v in f.qualifiers.items()}
                        )
                    )
                records.append(GenBankRecord(rec.id, rec.description, bytes(rec.seq).upper(), feats))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001  (Biopython's parser raises many kinds; all mean a bad file)
        raise InputError(
            path, f"not a readable GenBank file ({type(exc).__name__}: {exc})", "give a GenBank flat file"
        ) from None
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


MAX_TABLE_LINE = 1 << 20  #: bytes per line of a metadata or assay table


def csv_records(path: Path, lines: Iterable[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a delimited table, quoted fields allowed; a malformed line (a carriage return
    or NUL inside a field, an unterminated quote, a field over the csv limit) is one InputError naming it."""
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(
                path,
                f"malformed table line ({exc})",
                "save the table as plain tab- or comma-separated text, one record per line",
                line=reader.line_num,
            ) from None
        yield reader.line_num, values


def read_metadata(
    path: str | Path, *, id_column: str | None = None, lineage_column: str | None = None, date_column: str | None = None
) -> Metadata:
    """Read a TSV/CSV metadata table; dates are parsed (an unparsable date is an error naming the line)."""
    path = Path(path)
    lines = (line.decode("utf-8", errors="replace") for line in iter_lines(path, max_line=MAX_TABLE_LINE))
    first = next(lines, "")
    delimiter = "\t" if "\t" in first else ","
    records = csv_records(path, _chain_first(first, lines), delimiter)
    header = next(records, (1, []))[1]
    if len(header) < 2:
        raise InputError(
            path,
            "metadata has no header row with at least two columns",
            "give a TSV/CSV with columns such as id, lineage, date",
            line=1,
        )
    header = [h.strip() for h in header]
    idc = id_column or _pick(header, _ID_COLUMNS) or header[0]
    if idc not in header:
        raise InputError(path, f"no column '{idc}'", f"choose one of: {', '.join(header)}", line=1)
    linc = lineage_column or _pick(header, _LINEAGE_COLUMNS)
    datec = date_column or _pick(header, _DATE_COLUMNS)
    rows: dict[str, dict[str, object]] = {}
    for lineno, values in records:
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise InputError(
                path,
                f"{len(values)} fields where the header has {len(header)}",
                "check the delimiters on this line",
                line=lineno,
            )
        row: dict[str, object] = dict(zip(header, (v.strip() for v in values)))
        rid = str(row[idc])
        if datec is not None:
            try:
                date, precision = parse_date(str(row[datec]))
            except ValueError:
                raise InputError(
                    path,
                    f"unparsable date {row[datec]!r} in column '{datec}'",
                    "write dates as YYYY-MM-DD (or YYYY-MM, YYYY-MM-XX)",
                    line=lineno,
                    record=rid,
                ) from None
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
        warnings.warn(f"{metadata.path}: {len(missing)} metadata ids are not in the FASTA ({shown})", stacklevel=2)
    return missing
