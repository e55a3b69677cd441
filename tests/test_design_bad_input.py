"""`oligolab design` bad input: one clear line naming the problem and the fix, exit status 2, and nothing that
was already in the output folder is damaged (the same standard as `oligolab check`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from oligolab.cli import _register, app

from conftest import ANNOTATION, REFERENCE, pango_records

_register()
runner = CliRunner()


@pytest.fixture(scope="module")
def genomes(tmp_path_factory):
    d = tmp_path_factory.mktemp("design-bad")
    path = d / "g.fasta"
    path.write_text("".join(f">{r.id}\n{r.text()}\n" for r in pango_records(12)))
    return path


@pytest.fixture()
def out(tmp_path):
    o = tmp_path / "out"
    o.mkdir()
    (o / "report.html").write_text("earlier report")
    (o / "assays.tsv").write_text("earlier assays")
    return o


def _run(out, *args):
    result = runner.invoke(app, ["design", "--out", str(out), *map(str, args)])
    assert (out / "report.html").read_text() == "earlier report"
    assert (out / "assays.tsv").read_text() == "earlier assays"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert result.exit_code == 2, result.output
    text = " ".join(ln.strip() for ln in result.output.strip().splitlines() if ln.strip())
    assert text.startswith("error:"), result.output
    return text


def test_unknown_enzyme(out, genomes):
    msg = _run(out, "-g", genomes, "-e", "SpCas9", "-r", REFERENCE)
    assert "unknown enzyme 'SpCas9'" in msg and "LbCas12a" in msg and "--enzymes" in msg


def test_region_outside_the_reference(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--region", "40000-41000")
    assert "outside the reference" in msg and "29,903" in msg and "1-29903" in msg


def test_unknown_gene(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--annotation", ANNOTATION, "--region", "XYZ9")
    assert "no gene 'XYZ9'" in msg and "ORF1a" in msg and "START-END" in msg


def test_gene_without_annotation(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--region", "N")
    assert "no annotation" in msg and "--annotation" in msg


def test_cas13a_with_lamp(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "-e", "LwaCas13a", "-A", "lamp")
    assert "LAMP" in msg and "--amplification rpa" in msg


def test_unknown_amplification(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "-A", "nasba")
    assert "unknown amplification 'nasba'" in msg and "rpa, lamp, pcr" in msg


def test_no_candidate_in_a_tiny_region(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--region", "100-110")
    assert "no candidate LbCas12a guide" in msg and "widen --region" in msg


def test_missing_genome_file(out, tmp_path):
    msg = _run(out, "-g", tmp_path / "nope.fasta", "-r", REFERENCE)
    assert "nope.fasta" in msg and "file not found" in msg


def test_bad_fasta_names_the_line(out, tmp_path):
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\nACGTACGTQQ\n")
    msg = _run(out, "-g", bad, "-r", REFERENCE)
    assert "bad.fa, line 1, record 'a'" in msg and "illegal character 'Q'" in msg


def test_bad_off_target_file(out, genomes, tmp_path):
    bad = tmp_path / "human.fa"
    bad.write_text("not a fasta\n")
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--off-target", bad)
    assert "human.fa" in msg and "FASTA" in msg




def test_bad_related_file(out, genomes, tmp_path):
    bad = tmp_path / "relatives.fa"
    bad.write_bytes(b"\x00\x01binary\xff")
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--related", bad)
    assert "relatives.fa" in msg


def test_empty_reference(out, genomes, tmp_path):
    empty = tmp_path / "ref.fa"
    empty.write_text("")
    msg = _run(out, "-g", genomes, "-r", empty)
    assert "ref.fa" in msg


def test_annotation_that_is_not_genbank(out, genomes, tmp_path):
    bad = tmp_path / "ann.gb"
    bad.write_text(">not genbank\nACGT\n")
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--annotation", bad, "--region", "N")
    assert "ann.gb" in msg


def test_truncated_compressed_genomes(out, tmp_path):
    import zstandard

    data = zstandard.ZstdCompressor().compress("".join(f">{r.id}\n{r.text()}\n" for r in pango_records(4)).encode())
    cut = tmp_path / "cut.fasta.zst"
    cut.write_bytes(data[: len(data) // 2])
    msg = _run(out, "-g", cut, "-r", REFERENCE)
    assert "cut.fasta.zst" in msg


def test_out_is_a_file(genomes, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("mine")
    result = runner.invoke(app, ["design", "--out", str(target), "-g", str(genomes), "-r", str(REFERENCE),
                                 "--region", "28000-29600", "-n", "1"])
    assert result.exit_code == 2 and "is a file" in result.output and target.read_text() == "mine"


@pytest.mark.parametrize("text, expected", [
    ("name = 'X'\nfamily = ", "not valid TOML"),
    ("name = 'X'\nfamily = 'Cas12a'\ntarget = 'dna'\n", "lacks 'spacer_length'"),
    ("name = 'X'\nfamily = 'Cas12a'\ntarget = 'dna'\nspacer_length = 'twenty'\n", "wrong type"),
    ("name = 'X'\nfamily = 'Cas12a'\ntarget = 'dna'\nspacer_length = 20\nmotif = 'TTZV'\n", "not IUPAC"),
    ("name = 'X'\nfamily = 'Cas12a'\ntarget = 'dna'\nspacer_length = 20\nmotif5 = 'TTTV'\nmotif_rule = 'magic'\n",
     "unknown motif_rule"),
    ("name = 'X'\nfamily = 'Cas99'\ntarget = 'dna'\nspacer_length = 20\nmotif = 'TTTV'\n", "no rule for Cas99"),
])
def test_bad_enzyme_files(out, genomes, tmp_path, text, expected):
    folder = tmp_path / "enzymes"
    folder.mkdir()
    (folder / "X.toml").write_text(text)
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--enzymes", folder, "-e", "X")
    assert "X.toml" in msg or "Cas99" in msg
    assert expected in msg


@pytest.mark.parametrize("content, expected", [
    ("", "rescue.tsv"),
    ("assay\toligo\trole\tsequence\nA\tA-F\tforward\tACGTNNQQ\n", "rescue.tsv"),
])
def test_bad_rescue_files(out, genomes, tmp_path, content, expected):
    bad = tmp_path / "rescue.tsv"
    bad.write_text(content)
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--rescue", bad)
    assert expected in msg


def test_rescue_assay_without_rescue(out, genomes):
    msg = _run(out, "-g", genomes, "-r", REFERENCE, "--rescue-assay", "US CDC: 2019-nCoV_N1")
    assert "--rescue-assay needs --rescue" in msg


def test_out_folder_with_foreign_files_is_refused_before_any_work(genomes, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.docx").write_text("mine")
    result = runner.invoke(app, ["design", "--out", str(target), "-g", str(genomes), "-r", str(REFERENCE)])
    assert result.exit_code == 2 and "did not write" in result.output
    assert (target / "thesis.docx").read_text() == "mine"
