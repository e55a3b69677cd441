"""Chunk results kept on disk while a check runs, so an interrupted run resumes where it stopped.

The work folder (beside the output folder, ``.NAME.check-work``) holds one set of files per chunk: the Parquet
parts of the genome x oligo and genome x assay tables, the TSV lines a person opens, and the counts; the counts
file is written last and names the size and digest of each other file, so a chunk counts as done only when all its
files are there and intact. Chunk files are not fsynced one by one (a million genomes make tens of thousands of
them, and one fsync costs 5-20 ms on a busy disk): a killed process loses nothing the kernel already holds, and a
chunk damaged by a machine crash fails its digests and is checked again. The output folder is fsynced as a whole
when it is committed. The folder carries a key
made of the inputs (names, sizes, modification times; contents of the small files) and the options: a run with
other inputs or options starts afresh. When the output folder is complete, the work folder is removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from ..reports import apply_umask, write_bytes
from .options import CheckInputs, CheckOptions
from .worker import ChunkResult

#: options that do not change any result (only where and how fast it is computed)
_NEUTRAL_OPTIONS = {"threads", "workers", "cluster", "device", "work_dir"}
_FORMAT = 2  #: layout of the chunk files (2: the counts file names each file's size and digest)
_SMALL_FILE = 64 << 20  #: inputs up to this size are identified by their contents, larger ones by size and time


def run_key(inputs: CheckInputs, options: CheckOptions) -> str:
    """Identifies what a run computes: same key, same chunks and results."""
    h = hashlib.sha256(f"oligolab {__version__} chunk store {_FORMAT}\n".encode())
    for f in fields(options):
        if f.name not in _NEUTRAL_OPTIONS:
            h.update(f"{f.name}={getattr(options, f.name)!r}\n".encode())
    if options.rules_path:
        h.update(Path(options.rules_path).read_bytes())
    paths = [*inputs.assays, *inputs.genomes, inputs.metadata, inputs.reference, inputs.annotation, inputs.alias_key]
    for p in paths:
        if p is None:
            h.update(b"-\n")
            continue
        path = Path(p)
        st = path.stat()
        h.update(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        if st.st_size <= _SMALL_FILE:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


class ChunkStore:
    """The work folder of one run (locked against a second run on the same output)."""

    def __init__(self, folder: Path, key: str):
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            apply_umask(folder, folder=True)
            self._lock = open(folder / "lock", "a+")  # noqa: SIM115 (held open and locked for the store lifetime)
        except OSError as exc:
            raise InputError.from_os_error(exc, folder) from exc
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                folder, "another check is writing this output folder", "wait for it to finish or choose another --out"
            ) from None
        key_file = folder / "key"
        if not key_file.exists() or key_file.read_text() != key:
            for p in folder.iterdir():
                if p.name != "lock":
                    p.unlink()
            write_bytes(key_file, key.encode())
        self.resumed = 0
        self._loaded: dict[int, dict[str, Any]] = {}

    def _path(self, index: int, what: str) -> Path:
        return self.folder / f"{index:06d}.{what}"

    def done(self, index: int) -> bool:
        """Whether chunk ``index`` is stored complete (its counts file, and every file the counts name intact)."""
        try:
            summary = self._read_counts(index)
            files = summary["files"].items()
        except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError, AttributeError):
            return False
        if not all(self._intact(index, what, size, digest) for what, (size, digest) in files):
            return False
        self._loaded[index] = summary
        return True

    def save(self, result: ChunkResult) -> None:
        i = result.index
        files = {}
        for what, data in (
            ("oligo.parquet", result.oligo_parquet),
            ("assay.parquet", result.assay_parquet),
            ("oligo.tsv", result.oligo_tsv),
            ("assay.tsv", result.assay_tsv),
        ):
            _write(self._path(i, what), data)
            files[what] = (len(data), _digest(data))
        summary = {f.name: getattr(result, f.name) for f in fields(result) if not f.name.endswith(("parquet", "tsv"))}
        _write(self._path(i, "counts"), pickle.dumps({**summary, "files": files}, protocol=pickle.HIGHEST_PROTOCOL))

    def load(self, index: int) -> dict[str, Any]:
        """The counts of a chunk done by an earlier run (after :meth:`done` said it is complete)."""
        self.resumed += 1
        summary = self._loaded.pop(index, None) or self._read_counts(index)
        return {k: v for k, v in summary.items() if k != "files"}

    def _read_counts(self, index: int) -> dict[str, Any]:
        with open(self._path(index, "counts"), "rb") as fh:
            return pickle.load(fh)  # noqa: S301  (our own file in our own work folder)

    def _intact(self, index: int, what: str, size: int, digest: bytes) -> bool:
        path = self._path(index, what)
        try:
            return path.stat().st_size == size and _digest(path.read_bytes()) == digest
        except OSError:
            return False

    def indices(self) -> Iterator[int]:
        yield from sorted(int(p.name.split(".")[0]) for p in self.folder.glob("*.counts"))

    def move_rows(self, out: Path, header_oligo: bytes, header_assay: bytes) -> None:
        """The per-genome tables into the output folder: ``oligo_calls/`` and ``assay_calls/`` Parquet datasets
        (one part per chunk, hard-linked: the work folder stays complete until the output folder is in place) and
        ``oligo_calls.tsv`` / ``assay_calls.tsv`` (the chunks' lines in order)."""
        for what, stem, header in (("oligo", "oligo_calls", header_oligo), ("assay", "assay_calls", header_assay)):
            dataset = out / stem
            dataset.mkdir()
            apply_umask(dataset, folder=True)
            with open(out / f"{stem}.tsv", "wb") as tsv:
                tsv.write(header)
                for i in self.indices():
                    with open(self._path(i, f"{what}.tsv"), "rb") as part:
                        shutil.copyfileobj(part, tsv, 1 << 22)
                    _link_or_copy(self._path(i, f"{what}.parquet"), dataset / f"part-{i:06d}.parquet")
            apply_umask(out / f"{stem}.tsv")

    def remove(self) -> None:
        self._lock.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> None:
        self._lock.close()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def _write(path: Path, data: bytes) -> None:
    """Write a chunk file by rename (never half a file under its name), without fsync (see the module note)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        apply_umask(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise InputError.from_os_error(exc, exc.filename or path) from exc


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copyfile(src, dst)
        apply_umask(dst)
