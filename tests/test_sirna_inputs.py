"""`oligolab sirna` inputs: every malformed variants, miRNA, reference-siRNA and transcript file is refused in one
line naming the file, the line and the fix (or read correctly); property-based tests of each reader; the same
inputs give byte-identical outputs whatever Python's hash seed."""

from __future__ import annotations

import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA, ROOT
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from oligolab.cli import _register, app
from oligolab.errors import InputError
from oligolab.sirna.inputs import read_known, read_mirna_seeds, read_variants

TARGETS = DATA / "rnai-targets" / "human-rnai-target-mrnas.fasta"
DRUGS = DATA / "sirna-drugs" / "approved-sirnas.tsv"
MIRNAS = DATA / "sirna-drugs" / "human-mature-mirnas.tsv"
PCSK9_VARIANTS = DATA / "rnai-targets" / "variants" / "pcsk9-gnomad-v3.1.2-grch38.tsv.xz"
TTR = "NM_000371.4"
TTR_LEN = 616

_register()
runner = CliRunner()

VCF_HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def refused(call, *args, contains: str = "", line: int | None = None) -> str:
    with pytest.raises(InputError) as exc:
        call(*args)
    msg = str(exc.value)
    assert "\n" not in msg and "(fix:" in msg, msg
    if line is not None:
        assert f"line {line}" in msg, msg
    assert contains in msg, msg
    return msg


# ------------------------------------------------------------------------------------------------ variants

@pytest.mark.parametrize("text, contains, line", [
    ("position\tfrequency\nabc\t0.1\n", "'abc' is not a whole number", 2),
    ("position\tfrequency\n100\t1.2.3\n", "'1.2.3' is not a number", 2),
    ("position\tfrequency\n100\t7.5\n", "not an allele frequency between 0 and 1", 2),
    ("position\tfrequency\n100\t-0.1\n", "not an allele frequency", 2),
    ("position\tfrequency\n100\tnan\n", "not an allele frequency", 2),
    ("position\tfrequency\n100\tinf\n", "not an allele frequency", 2),
    ("position\tfrequency\n700\t0.1\n", "outside the target transcript (1-616)", 2),
    ("position\tfrequency\n0\t0.1\n", "outside the target transcript", 2),
    ("pos\tfreq\n100\t0.1\n", "needs a position column", 1),
    ("position\tfrequency\n100\t0.1\textra\n", "3 fields but the header has 2", 2),
    ("", "file is empty", None),
    ("\n\n\n", "no header line", None),
    (VCF_HEAD + f"{TTR}\tabc\t.\tA\tG\t.\tPASS\tAF=0.1\n", "POS 'abc' is not a whole number", 3),
    (VCF_HEAD + f"{TTR}\t100\t.\tA\tG\t.\tPASS\tAF=1.2.3\n", "AF '1.2.3' is not a number", 3),
    (VCF_HEAD + f"{TTR}\t100\t.\tA\tG\t.\tPASS\tAF=7.5\n", "not an allele frequency", 3),
    (VCF_HEAD + f"{TTR}\t9000\t.\tA\tG\t.\tPASS\tAF=0.1\n", "POS 9000 is outside the target transcript", 3),
    (VCF_HEAD + f"{TTR}\t100\t.\tA\tG\t.\tPASS\tDP=4\n", "no AF in INFO", 3),
    (VCF_HEAD + f"{TTR}\t100\t.\tA\tG,T\t.\tPASS\tAF=0.1\n", "1 AF values for 2 ALT alleles", 3),
    (VCF_HEAD + f"{TTR},100,.,A,G,.,PASS,AF=0.1\n", "comma-separated", 3),
    (VCF_HEAD + f"{TTR}\t100\t.\tA\n", "4 tab-separated columns", 3),
])
def test_malformed_variants_refused(tmp_path, text, contains, line):
    path = write(tmp_path, "variants.vcf" if "VCF" in text else "variants.tsv", text)
    refused(read_variants, path, TTR, TTR_LEN, contains=contains, line=line)


def test_variant_tables_read_correctly(tmp_path):
    """Comma-separated tables, VCFs with several ALT alleles and versionless ids are read, not refused."""
    csv_ = write(tmp_path, "v.csv", "id,position,af\nrs1,100,0.25\nrs2,\"200\",0.5\n")
    assert [(v.position, v.frequency, v.label) for v in read_variants(csv_, TTR, TTR_LEN)] == \
        [(100, 0.25, "rs1"), (200, 0.5, "rs2")]
    vcf = write(tmp_path, "v.vcf", VCF_HEAD + "NM_000371\t100\trs3\tA\tG,T\t.\tPASS\tDP=3;AF=0.1,0.02\n"
                                              "NM_999\t5\t.\tA\tG\t.\tPASS\tAF=0.9\n")
    assert [(v.position, v.frequency, v.label) for v in read_variants(vcf, TTR, TTR_LEN)] == \
        [(100, 0.1, "rs3"), (100, 0.02, "rs3")]
    xz = tmp_path / "v.tsv.xz"
    xz.write_bytes(lzma.compress(b"position\tfrequency\n42\t0.01\n"))
    assert read_variants(xz, TTR, TTR_LEN)[0].position == 42
    gnomad = read_variants(PCSK9_VARIANTS, "NM_174936.4", 3637)
    assert len(gnomad) > 500 and any(v.label == "rs45448095" and v.position == 227 for v in gnomad)


def test_truncated_and_binary_variant_files(tmp_path):
    whole = lzma.compress(b"position\tfrequency\n" + b"42\t0.01\n" * 20000)
    cut = write(tmp_path, "v.tsv.xz", whole[: len(whole) // 2])
    refused(read_variants, cut, TTR, TTR_LEN, contains="truncated or corrupt")
    binary = write(tmp_path, "v.tsv", b"position\tfrequency\n\x00\x01\x02\t\x03\n")
    refused(read_variants, binary, TTR, TTR_LEN, contains="binary content", line=2)
    long_line = write(tmp_path, "long.tsv", "position\tfrequency\n" + "1" * (2 << 20) + "\t0.1\n")
    refused(read_variants, long_line, TTR, TTR_LEN, contains="line longer than", line=2)


# --------------------------------------------------------------------------------------------------- miRNAs

@pytest.mark.parametrize("text, contains, line", [
    ("name\tsequence_seed\nmiR-1\tGAGGUAG\n", "needs a name column and a seed_2_8", 1),
    ("name\tseed_2_8\nmiR-1\tXYZ!!\n", "'XYZ!!' of 'miR-1' is not 7 letters", 2),
    ("name\tseed_2_8\nmiR-1\tGAGGUAGG\n", "is not 7 letters", 2),
    ("name\tseed_2_8\n", "no miRNA in the file", None),
    ("", "file is empty", None),
    ("name\tmature_sequence\nmiR-1\tUGAG\n", "is not a mature miRNA", 2),
    (">miR-1\nUGAGGUAGUAGGUUGUAUAGUU\n>miR-2\nUGA\n", "is not a mature miRNA", None),
])
def test_malformed_mirnas_refused(tmp_path, text, contains, line):
    path = write(tmp_path, "mirnas.fa" if text.startswith(">") else "mirnas.tsv", text)
    refused(read_mirna_seeds, path, contains=contains, line=line)


def test_mirna_files_read_correctly(tmp_path):
    seeds = read_mirna_seeds(MIRNAS)
    assert "hsa-let-7a-5p" in seeds["GAGGUAG"]
    csv_ = write(tmp_path, "m.csv", "name,seed_2_8\nmiR-x,GAGGTAG\n")
    assert read_mirna_seeds(csv_) == {"GAGGUAG": ["miR-x"]}
    fasta = write(tmp_path, "m.fa", ">hsa-let-7a-5p MIMAT0000062\nUGAGGUAGUAGGUUGUAUAGUU\n")
    assert read_mirna_seeds(fasta) == {"GAGGUAG": ["hsa-let-7a-5p"]}


# ------------------------------------------------------------------------------------------ reference siRNAs

@pytest.mark.parametrize("text, contains, line", [
    ("drug\tstrand\nx\tsense\n", "lacks column(s) sequence", 1),
    ("drug\tstrand\tsequence\nx\tguide\tUCUUGGUUACAUGAAAUCCCAUC\n", "'guide' is not sense or antisense", 2),
    ("drug\tstrand\tsequence\nx\tantisense\tUCUUGG\n", "is not 15-40 letters", 2),
    ("drug\tstrand\tsequence\nx\tantisense\tUsCfsuugGfuuAfcaugAfaAfucc\n", "is not 15-40 letters", 2),
])
def test_malformed_known_refused(tmp_path, text, contains, line):
    refused(read_known, write(tmp_path, "known.tsv", text), contains=contains, line=line)


def test_shipped_drug_table_reads():
    rows = read_known(DRUGS)
    assert {r.name for r in rows} >= {"patisiran", "vutrisiran", "givosiran", "inclisiran", "lumasiran"}


# ------------------------------------------------------------------------------------------ end to end

def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    text = " ".join(ln.strip() for ln in result.output.strip().splitlines() if ln.strip())
    assert text.startswith("error:") and "Traceback" not in text, result.output
    return text


@pytest.mark.parametrize("option, name, text, contains", [
    ("--variants", "v.tsv", "position\tfrequency\nabc\t0.1\n", "v.tsv, line 2: position 'abc'"),
    ("--variants", "v.tsv", "position\tfrequency\n100\t7.5\n", "v.tsv, line 2: frequency 7.5"),
    ("--mirnas", "m.tsv", "name\tseed_2_8\nmiR-1\tXYZ!!\n", "m.tsv, line 2: seed 'XYZ!!'"),
    ("--mirnas", "m.tsv", "name\tseed\n", "m.tsv: no miRNA in the file"),
    ("--known", "k.tsv", "drug,strand,sequence\nx,guide,ACGUACGUACGUACGUACGU\n", "k.tsv, line 2: strand 'guide'"),
    ("--off-target", "o.fa", ">x\nXYZ!!\n", "o.fa, line 1, record 'x': illegal character"),
    ("--ortholog", "o.fa", "ACGT\n", "o.fa, line 1: sequence data before the first FASTA header"),
    ("--target", "t.fa", ">t\nNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN\n", "no candidate site left"),
])
def test_command_refuses_bad_inputs_in_one_line(tmp_path, option, name, text, contains):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("earlier report")
    bad = write(tmp_path, name, text)
    args = ["sirna", "--target", str(TARGETS), "--target-id", TTR, "--out", str(out)]
    if option == "--target":
        args[1:5] = ["--target", str(bad)]
    else:
        args += [option, str(bad)]
    msg = error_line(runner.invoke(app, args))
    assert contains in msg, msg
    assert (out / "report.html").read_text() == "earlier report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_outputs_do_not_depend_on_the_hash_seed(tmp_path):
    """The same inputs under two PYTHONHASHSEED values give byte-identical files (manifest included); the runs'
    umasks (022, 027) set the files' modes and nothing else."""
    outs = []
    for seed, umask in (("1", 0o022), ("4242", 0o027)):
        out = tmp_path / f"run{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "oligolab.cli", "sirna", "--target", str(TARGETS), "--target-id",
                        "NM_017545.3", "--off-target", str(TARGETS), "--mirnas", str(MIRNAS), "--known", str(DRUGS),
                        "--top", "10", "--out", str(out)], check=True, env=env, cwd=ROOT, capture_output=True,
                       preexec_fn=lambda umask=umask: os.umask(umask))
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir()) and "candidates.csv" in names
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    for out, folder_mode, file_mode in ((outs[0], 0o755, 0o644), (outs[1], 0o750, 0o640)):
        assert out.stat().st_mode & 0o777 == folder_mode
        assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {oct(file_mode)}


# ------------------------------------------------------------------------------------- property-based tests

TOKENS = st.sampled_from(["position", "frequency", "af", "id", "name", "seed_2_8", "sequence", "drug", "strand",
                          "sense", "antisense", "transcript_id", TTR, "NM_000371", "100", "616", "0", "-3", "abc",
                          "0.1", "1.2.3", "7.5", "nan", "1e308", "GAGGUAG", "XYZ!!", "UGAGGUAGUAGGUUGUAUAGUU", "\t",
                          ",", "\n", "\r\n", '"', "#", "##fileformat=VCFv4.2", "#CHROM", "AF=0.5", "AF=", ";", ".",
                          "A", "G,T", "\x00", "\ufeff", " "])
TEXTS = st.one_of(st.lists(TOKENS, max_size=60).map("".join), st.text(max_size=300),
                  st.binary(max_size=300).map(lambda b: b.decode("latin-1")))


def only_input_errors(call, path: Path, text: str, *args) -> None:
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    try:
        call(path, *args)
    except InputError as exc:
        assert "\n" not in str(exc)


@pytest.mark.fuzz
@given(text=TEXTS, vcf=st.booleans())
def test_fuzz_read_variants(tmp_path, text, vcf):
    only_input_errors(read_variants, tmp_path / "fuzz.tsv", (VCF_HEAD if vcf else "") + text, TTR, TTR_LEN)


@pytest.mark.fuzz
@given(text=TEXTS)
def test_fuzz_read_mirna_seeds(tmp_path, text):
    only_input_errors(read_mirna_seeds, tmp_path / "fuzz.tsv", text)


@pytest.mark.fuzz
@given(text=TEXTS)
def test_fuzz_read_known(tmp_path, text):
    only_input_errors(read_known, tmp_path / "fuzz.tsv", text)


@pytest.mark.fuzz
@given(text=st.lists(st.sampled_from([">t1 gene (TTR), mRNA", ">", "\n", "ACGT", "acgu", "NNNN", "CDS=1-9", "XYZ!!",
                                      "LOCUS       X", "ORIGIN", "//", "1 acgt", "\x00", " ", "-"]), max_size=50)
       .map("".join))
def test_fuzz_read_transcripts(tmp_path, text):
    """Target, off-target and ortholog files go through read_transcripts: only InputError, never a crash."""
    from oligolab.sirna import read_transcripts

    only_input_errors(read_transcripts, tmp_path / "fuzz.fa", text)
