"""Bad input: one clear line naming the file, the line or record and the fix; exit status 2; nothing that was
already in the output folder is damaged."""

from __future__ import annotations

import gzip
import shutil
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from oligolab.annotation import Annotation
from oligolab.assays import read_assays
from oligolab.cli import _register, app
from oligolab.errors import InputError
from oligolab.sequences import read_fasta, read_metadata

from conftest import ANNOTATION, DIAG_ASSAYS, GENBANK, GENBANK_META, REFERENCE

_register()
runner = CliRunner()

GOOD_ASSAY = "assay\toligo\trole\tsequence\nN1\tN1-F\tforward\tGACCCCAAAATCAGCGAAAT\n" \
             "N1\tN1-R\treverse\tTCTGGTTACTGCCAGTTGAATCTG\nN1\tN1-P\tprobe\tACCCCGCATTACGTTTGGTGGACC\n"


@pytest.fixture()
def workdir(tmp_path):
    """An output folder holding the results of an earlier run, and small valid inputs."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("earlier report")
    (out / "oligo_calls.tsv").write_text("earlier rows")
    assays = tmp_path / "assays.tsv"
    assays.write_text(GOOD_ASSAY)
    genomes = tmp_path / "genomes.fa"
    shutil.copy(REFERENCE, genomes)
    return tmp_path


def _run(workdir, *args):
    result = runner.invoke(app, ["check", "--out", str(workdir / "out"), *map(str, args)])
    # earlier outputs untouched, no temporary files left behind
    assert (workdir / "out" / "report.html").read_text() == "earlier report"
    assert (workdir / "out" / "oligo_calls.tsv").read_text() == "earlier rows"
    assert not [p for p in (workdir / "out").iterdir() if p.name.startswith(".")]
    return result


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    text = " ".join(ln.strip() for ln in lines)  # the console may wrap one long line
    assert text.startswith("error:"), result.output
    return text


def test_missing_fasta_header(workdir):
    bad = workdir / "bad.fa"
    bad.write_text("ACGTACGTACGT\n>x\nACGT\n")
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "bad.fa, line 1" in msg and "before the first FASTA header" in msg


def test_empty_genome_file(workdir):
    bad = workdir / "empty.fa.gz"
    bad.write_bytes(b"")
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "empty.fa.gz" in msg and "empty" in msg


def test_truncated_xz(workdir):
    data = GENBANK.read_bytes()
    bad = workdir / "truncated.fasta.xz"
    bad.write_bytes(data[: len(data) // 2])
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "truncated.fasta.xz" in msg and "truncated or corrupt" in msg


def test_truncated_gzip(workdir):
    full = gzip.compress(REFERENCE.read_bytes())
    bad = workdir / "truncated.fa.gz"
    bad.write_bytes(full[: len(full) - 100])
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "truncated.fa.gz" in msg and "truncated or corrupt" in msg


def test_empty_compressed_file(workdir):
    bad = workdir / "nothing.fa.gz"
    bad.write_bytes(gzip.compress(b""))
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "nothing.fa.gz" in msg and "no FASTA records" in msg


def test_illegal_character_in_genome(workdir):
    bad = workdir / "weird.fa"
    bad.write_text(">ok\nACGT\n>broken\nACGT\nAC1GT\n")
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "weird.fa, line 3, record 'broken'" in msg and "'1'" in msg


def _assay_error(workdir, text):
    bad = workdir / "bad_assays.tsv"
    bad.write_text(text)
    return _error_line(_run(workdir, "-a", bad, "-g", workdir / "genomes.fa"))


def test_illegal_character_in_oligo(workdir):
    msg = _assay_error(workdir, GOOD_ASSAY.replace("GACCCCAAAATCAGCGAAAT", "GACCCCAAAAXCAGCGAAAT"))
    assert "bad_assays.tsv, line 2" in msg and "illegal character" in msg and "'X'" in msg


def test_oligo_too_short(workdir):
    msg = _assay_error(workdir, GOOD_ASSAY.replace("GACCCCAAAATCAGCGAAAT", "GACCCCAAA"))
    assert "line 2" in msg and "9 nt" in msg and "at least 10" in msg


def test_duplicate_oligo_names(workdir):
    msg = _assay_error(workdir, GOOD_ASSAY.replace("N1-R", "N1-F"))
    assert "line 3" in msg and "duplicate oligo name 'N1-F'" in msg


def test_reverse_without_forward(workdir):
    text = "assay\toligo\trole\tsequence\nX\tX-R\treverse\tTCTGGTTACTGCCAGTTGAATCTG\n"
    msg = _assay_error(workdir, text)
    assert "line 2" in msg and "reverse primer but no forward primer" in msg


def test_unknown_role(workdir):
    msg = _assay_error(workdir, GOOD_ASSAY.replace("\tprobe\t", "\tbeacon\t"))
    assert "line 4" in msg and "unknown role 'beacon'" in msg and "use one of" in msg


def test_unparsable_date(workdir):
    meta = workdir / "meta.tsv"
    meta.write_text("strain\tdate\tlineage\nWuhan/Hu-1/2019\t2019-12-26\tB\nother\t26/12/2019\tB\n")
    result = _run(workdir, "-a", workdir / "assays.tsv", "-g", workdir / "genomes.fa", "-m", meta)
    msg = _error_line(result)
    assert "meta.tsv, line 3, record 'other'" in msg and "unparsable date '26/12/2019'" in msg


def test_metadata_ids_missing_from_fasta_is_a_warning(workdir, tmp_path):
    lines = GENBANK_META.read_text().splitlines()
    meta = workdir / "meta.tsv"
    meta.write_text("\n".join(lines[:5] + [lines[5].replace(lines[5].split("\t")[0], "not-in-fasta", 1)]) + "\n")
    out = tmp_path / "fresh"
    result = runner.invoke(app, ["check", "--out", str(out), "-a", str(DIAG_ASSAYS), "-g", str(GENBANK),
                                 "-m", str(meta)])
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "not-in-fasta" in result.output
    assert (out / "report.html").exists()


# ------------------------------------------------------------------------------- damaged and odd input files

PANGO_ZST = GENBANK.parent / "pango-consensus-genomes.fasta.zst"


def test_zstd_cut_in_half_is_refused_naming_the_byte(workdir):
    """The shipped .zst collection cut in half was accepted with exit 0 (1,660 genomes, the last truncated)."""
    data = PANGO_ZST.read_bytes()
    bad = workdir / "half.fasta.zst"
    bad.write_bytes(data[: len(data) // 2])
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "half.fasta.zst" in msg and "truncated or corrupt" in msg and f"at byte {len(data) // 2:,}" in msg


def test_zstd_checksum_mismatch_is_refused(tmp_path):
    import zstandard

    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(REFERENCE.read_bytes()))
    frame[-1] ^= 0xFF  # the frame's content checksum (last 4 bytes)
    bad = tmp_path / "sum.fa.zst"
    bad.write_bytes(bytes(frame))
    with pytest.raises(InputError, match="sum.fa.zst.*truncated or corrupt at byte"):
        list(read_fasta(bad))


def test_corrupt_gzip_block_is_one_line(workdir):
    data = bytearray(gzip.compress(REFERENCE.read_bytes()))
    data[len(data) // 2] ^= 0xFF
    bad = workdir / "corrupt.fa.gz"
    bad.write_bytes(bytes(data))
    msg = _error_line(_run(workdir, "-a", workdir / "assays.tsv", "-g", bad))
    assert "corrupt.fa.gz" in msg and "truncated or corrupt at byte" in msg and "after 0 bytes" not in msg


def test_every_compression_read_to_its_end(tmp_path):
    import bz2
    import lzma

    import zstandard

    text = REFERENCE.read_bytes() * 3
    for suffix, compress in ((".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress),
                             (".zst", zstandard.ZstdCompressor(write_checksum=True).compress)):
        whole = compress(text)
        good = tmp_path / f"ok.fa{suffix}"
        good.write_bytes(whole + (compress(text) if suffix != ".xz" else b""))  # two members/frames
        assert len(list(read_fasta(good))) == (6 if suffix != ".xz" else 3), suffix
        for cut in (len(whole) // 3, len(whole) - 1):
            bad = tmp_path / f"cut{cut}.fa{suffix}"
            bad.write_bytes(whole[:cut])
            with pytest.raises(InputError, match="truncated or corrupt"):
                list(read_fasta(bad))


def test_plain_file_with_a_compression_suffix_is_read_by_content_with_a_warning(tmp_path):
    plain = tmp_path / "actually-plain.fa.gz"
    plain.write_bytes(REFERENCE.read_bytes())
    with pytest.warns(UserWarning, match="named .gz but not compressed"):
        records = list(read_fasta(plain))
    assert [r.seq for r in records] == [r.seq for r in read_fasta(REFERENCE)]


def test_carriage_return_inside_a_metadata_field_is_one_line(tmp_path):
    meta = tmp_path / "meta.tsv"
    meta.write_bytes(b"strain\tdate\tlineage\nA/1\t2020-01-01\tB.1\nA/2\t2020-0\r1-02\tB\n")
    with pytest.raises(InputError, match=r"meta.tsv, line 3: malformed table line"):
        read_metadata(meta)


def test_carriage_return_inside_the_published_assay_csv_is_one_line(tmp_path):
    lines = DIAG_ASSAYS.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b",", b",\r", 1)
    bad = tmp_path / "assays.csv"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError, match=r"assays.csv, line 4: malformed table line"):
        read_assays([bad])


def test_oligo_longer_than_the_engine_takes_is_one_line(workdir):
    msg = _assay_error(workdir, GOOD_ASSAY.replace("GACCCCAAAATCAGCGAAAT", "GACCCCAAAATCAGCGAAAT" * 4))
    assert "bad_assays.tsv, line 2" in msg and "80 nt" in msg and "at most 64 nt" in msg


# --------------------------------------------------------------------- property-based tests of each reader

FIELD_CHARS = st.sampled_from(list("ACGTNacgt>-\t,\n\r \"#|0123456789.:;/_XYZé\x00\ufeff"))
TEXTS = st.lists(FIELD_CHARS, max_size=400).map("".join)


def only_input_errors(call, path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a name that promises another compression: read by content
            call(path)
    except InputError as exc:
        assert "\n" not in str(exc)


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import lzma

    import zstandard

    return {"": lambda d: d, ".gz": gzip.compress, ".xz": lzma.compress, ".bz2": bz2.compress,
            ".zst": zstandard.ZstdCompressor(write_checksum=True).compress}[kind](data)


@pytest.mark.fuzz
@given(text=TEXTS, kind=st.sampled_from(["", ".gz", ".xz", ".bz2", ".zst"]), cut=st.floats(0, 1),
       flip=st.integers(-1, 4000))
def test_fuzz_read_fasta_in_every_compression(tmp_path, text, kind, cut, flip):
    """FASTA-like text, compressed, then cut short or with one byte flipped: records or one InputError."""
    data = bytearray(_compress(kind, (">x\n" if flip % 2 else "") .encode() + text.encode("utf-8", "surrogatepass")))
    data = data[: max(1, int(len(data) * cut))] if cut < 0.5 else data
    if 0 <= flip < len(data):
        data[flip] ^= 0x5A
    only_input_errors(lambda p: list(read_fasta(p)), tmp_path / f"fuzz.fa{kind}", bytes(data))


@pytest.mark.fuzz
@given(text=TEXTS)
def test_fuzz_read_metadata(tmp_path, text):
    only_input_errors(read_metadata, tmp_path / "meta.tsv", ("strain\tdate\tlineage\n" + text).encode("utf-8",
                                                                                                    "surrogatepass"))


@pytest.mark.fuzz
@given(text=TEXTS, head=st.sampled_from(["", "assay\toligo\trole\tsequence\n", "assay,oligo,role,sequence\n",
                                         "Institution,Name,Description,Sequence\n"]))
def test_fuzz_read_assay_tables(tmp_path, text, head):
    only_input_errors(lambda p: read_assays([p]), tmp_path / "assays.tsv",
                      (head + text).encode("utf-8", "surrogatepass"))


BED_LINE = st.tuples(st.sampled_from(["MN908947.3", "", "chr"]), st.integers(-5, 30000).map(str),
                     st.integers(-5, 30000).map(str), st.sampled_from(["SC2_1_LEFT", "SC2_1_RIGHT", "x", "A_LEFT_alt1"]),
                     st.sampled_from(["1", "2", ""]), st.sampled_from(["+", "-", ""]), TEXTS).map("\t".join)


@pytest.mark.fuzz
@given(lines=st.lists(BED_LINE, max_size=6))
def test_fuzz_read_bed(tmp_path, lines):
    only_input_errors(lambda p: read_assays([p]), tmp_path / "scheme.primer.bed", "\n".join(lines).encode(
        "utf-8", "surrogatepass"))


GENBANK_TEXT = ANNOTATION.read_bytes()


@pytest.mark.fuzz
@given(start=st.integers(0, len(GENBANK_TEXT)), length=st.integers(0, 2000), junk=TEXTS)
def test_fuzz_read_annotation(tmp_path, start, length, junk):
    """The real reference GenBank with a stretch replaced by junk: an annotation or one InputError."""
    data = GENBANK_TEXT[:start] + junk.encode("utf-8", "surrogatepass") + GENBANK_TEXT[start + length:]
    only_input_errors(Annotation.from_genbank, tmp_path / "ref.gb", data)


def test_a_compression_suffix_on_a_plain_genome_file_is_said_once(workdir):
    plain = workdir / "genomes.fa.zst"
    shutil.copy(REFERENCE, plain)
    out = workdir / "fresh"
    result = runner.invoke(app, ["check", "--out", str(out), "-a", str(workdir / "assays.tsv"), "-g", str(plain),
                                 "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("named .zst but not compressed; read by its content") == 1
    assert (out / "report.html").exists()


def test_an_output_folder_with_foreign_files_is_refused_before_any_work(workdir):
    """Checked first (a million genomes would otherwise be checked before the refusal)."""
    (workdir / "out" / "my-notes.docx").write_text("not oligolab's")
    msg = _error_line(runner.invoke(app, ["check", "--out", str(workdir / "out"), "-a", str(workdir / "assays.tsv"),
                                          "-g", str(workdir / "no-such-genomes.fa")]))
    assert "files oligolab did not write" in msg and "no-such-genomes" not in msg
    assert (workdir / "out" / "my-notes.docx").read_text() == "not oligolab's"
