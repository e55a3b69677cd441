"""Property-based test of the shared GenBank reader (sequences.read_genbank: siRNA targets, the check's reference
annotation) in every compression: the real reference GenBank, compressed, then cut short or with one byte
flipped, gives its records (the same as the plain file's when intact) or one InputError line, never another
exception. The FASTA, metadata, assay and BED readers are fuzzed in tests/test_bad_input.py, the lab formats and
plate maps in tests/test_lab_fuzz.py, variants, miRNAs, transcripts, annotations and duplexes in the sirna tests,
enzyme files and regions in tests/test_design_fuzz.py, accession lists and FHIR orders in
tests/test_day_accessioning.py."""

from __future__ import annotations

import bz2
import gzip
import lzma
import warnings

import pytest
import zstandard
from conftest import ANNOTATION
from hypothesis import given
from hypothesis import strategies as st

from oligolab.errors import InputError
from oligolab.sequences import read_genbank

GENBANK = ANNOTATION.read_bytes()
COMPRESS = {"": bytes, ".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress,
            ".zst": zstandard.ZstdCompressor(write_checksum=True).compress}


@pytest.fixture(scope="module")
def plain_records():
    return read_genbank(ANNOTATION)


@pytest.mark.fuzz
@given(kind=st.sampled_from(sorted(COMPRESS)), cut=st.floats(0, 1), flip=st.integers(-1, 40_000),
       junk=st.binary(max_size=64))
def test_fuzz_read_genbank_in_every_compression(tmp_path_factory, plain_records, kind, cut, flip, junk):
    data = bytearray(COMPRESS[kind](GENBANK))
    intact = cut >= 0.5 and not 0 <= flip < len(data)
    if cut < 0.5:
        data = data[: max(1, int(len(data) * cut))] + junk
    if 0 <= flip < len(data):
        data[flip] ^= 0x5A
    path = tmp_path_factory.mktemp("gb") / f"reference.gb{kind}"
    path.write_bytes(bytes(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")        # a suffix that promises another compression: read by content
            records = read_genbank(path)
    except InputError as exc:
        assert "\n" not in str(exc) and path.name in str(exc)
        assert not intact, f"the intact {kind or 'plain'} file was refused: {exc}"
        return
    if intact:
        assert records == plain_records
