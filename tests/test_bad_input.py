"""Bad input: one clear line naming the file, the line or record and the fix; exit status 2; nothing that was
already in the output folder is damaged."""

from __future__ import annotations

import gzip
import shutil

import pytest
from typer.testing import CliRunner

from oligolab.cli import _register, app

from conftest import DIAG_ASSAYS, GENBANK, GENBANK_META, REFERENCE

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
