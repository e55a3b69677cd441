"""Property-based tests of the readers `oligolab design` owns: enzyme files (the data that adds an enzyme
family) and the --region text. Anything but the project's one-line InputError is a bug."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oligolab.design.candidates import motif_table
from oligolab.design.pipeline import parse_region
from oligolab.errors import InputError
from oligolab.knowledge import load_enzymes
from oligolab.sequences import read_fasta

from conftest import REFERENCE

KEYS = ["name", "family", "target", "spacer_length", "spacer_lengths", "motif", "motif5", "motif3", "motif_side",
        "motif_strand", "motif_rule", "motif_required", "seed", "direct_repeat", "repeat_side", "guide_kind",
        "activity_model", "collateral", "[provenance]", "[[reporter]]", "sequence", "reporter", "provenance"]
VALUES = ['"X"', '"Cas12a"', '"Cas13b"', '"dna"', '"rna"', '"protein"', "20", "0", "-1", "1e9", "28.5", "true",
          "[18, 25]", "[25, 18]", "[1]", '["a", 2]', '"TTTV"', '"TTZV"', '"D"', '"NNN"', '"5prime"', '"both"',
          '"target"', '"cas13b_pfs"', '"magic"', '"UAAUUUCUACU"', '"XYZ"', '"/56-FAM/TTATT/3IABkFQ/"', "{}",
          "[[1]]", '""', '"sgRNA"', '"3prime"']
LINES = st.builds(lambda k, v: f"{k} = {v}" if not k.startswith("[") else k, st.sampled_from(KEYS),
                  st.sampled_from(VALUES))
TEXTS = st.one_of(st.lists(LINES, max_size=25).map("\n".join), st.text(max_size=300),
                  st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
_counter = itertools.count()


@pytest.mark.fuzz
@given(text=TEXTS)
def test_fuzz_enzyme_files(tmp_path, text):
    folder = tmp_path / f"enzymes{next(_counter)}"
    folder.mkdir()
    (folder / "fuzz.toml").write_bytes(text.encode("utf-8", errors="surrogatepass"))
    load_enzymes.cache_clear()
    try:
        enzymes = load_enzymes(str(folder))
        for e in enzymes.values():
            e.oligo_context()
            e.guide_rna("ACGU" * 5)
            motif_table(e)
    except InputError as exc:
        assert "\n" not in str(exc)
    finally:
        load_enzymes.cache_clear()


REFERENCE_RECORD = next(iter(read_fasta(REFERENCE)))


@pytest.mark.fuzz
@given(text=st.one_of(st.text(max_size=40), st.from_regex(r"\s*-?\d{0,7}\s*[-:.]{0,3}\s*-?\d{0,7}\s*")))
def test_fuzz_region_text(text):
    try:
        lo, hi = parse_region(text, REFERENCE_RECORD, None)
        assert 0 <= lo < hi <= len(REFERENCE_RECORD.seq)
    except InputError as exc:
        assert "\n" not in str(exc)
