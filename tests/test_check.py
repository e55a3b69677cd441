"""`oligolab check` end to end on the shipped real data."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from oligolab.check import CheckInputs, CheckOptions, run_check
from oligolab.sequences import read_fasta, read_metadata

from conftest import (ALIAS_KEY, ANNOTATION, ARTIC, DIAG_ASSAYS, GENBANK, GENBANK_META, NEIGHBOURS, PANGO,
                      REFERENCE, ROOT)

LINEAGES = ("A", "B", "B.1.1", "B.1.1.7", "B.1.617.2", "P.1", "BA.1", "BA.2", "BA.5.1", "XBB.1.5", "JN.1",
            "KP.3", "LP.8.1", "BA.2.86")


@pytest.fixture(scope="module")
def pango_subset(tmp_path_factory):
    """14 real lineage consensus genomes, written as a gzip FASTA (one of the supported compressions)."""
    import gzip

    path = tmp_path_factory.mktemp("pango") / "subset.fasta.gz"
    with gzip.open(path, "wt") as fh:
        for rec in read_fasta(PANGO, keep_gaps=True):
            if rec.id in LINEAGES:
                fh.write(f">{rec.id}\n{rec.text()}\n")
    return path


@pytest.fixture(scope="module")
def pango_run(pango_subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("check-pango")
    inputs = CheckInputs([DIAG_ASSAYS, ARTIC], [pango_subset], None, REFERENCE, ANNOTATION, ALIAS_KEY, [NEIGHBOURS])
    result = run_check(inputs, out, CheckOptions())
    return result, out


def _raw_columns(lineage: str, start1: int, end1: int) -> str:
    """Bases of an aligned Pango record at reference columns [start1, end1] (1-based, read straight from the
    shipped file: the consensus genomes are aligned to the reference, deletions written as '-')."""
    for rec in read_fasta(PANGO, keep_gaps=True):
        if rec.id == lineage:
            return rec.text()[start1 - 1:end1]
    raise KeyError(lineage)


def test_china_cdc_n_forward_primer_loses_its_5prime_end_in_b_1_1(pango_run):
    """Verified by hand: the China CDC N-gene forward primer GGGGAACTTCTCCTGCTAGAAT sits at reference
    28881-28902; lineage B.1.1 and its descendants (here B.1.1.7) carry the GGG->AAC triple substitution at
    28881-28883 (N:R203K, G204R), so the primer's three 5'-most bases mismatch (positions 22, 21, 20 from the
    3' end). Lineage A keeps GGG."""
    assert _raw_columns("B.1.1.7", 28881, 28902) == "AACGAACTTCTCCTGCTAGAAT"
    assert _raw_columns("A", 28881, 28902) == "GGGGAACTTCTCCTGCTAGAAT"
    result, out = pango_run
    rows = pd.read_parquet(out / "oligo_calls")
    alpha = rows[(rows.genome == "B.1.1.7") & (rows.oligo == "China-CDC-N-F")].iloc[0]
    assert alpha["call"] == "degraded"
    assert alpha["mismatch_from_3p"] == "22,21,20"
    assert alpha["mutations"] == "GGG28881AAC"  # one event, not three
    assert alpha["cause"] == "mutation" and alpha["design_mismatch_from_3p"] == ""
    # site start is in the genome's own coordinates: the reference position minus the deleted bases before it
    assert alpha["start"] == 28881 - _raw_columns("B.1.1.7", 1, 28880).count("-")
    lineage_a = rows[(rows.genome == "A") & (rows.oligo == "China-CDC-N-F")].iloc[0]
    assert lineage_a["call"] == "binds" and lineage_a["mismatches"] == 0
    escapes = pd.read_csv(out / "escape_mutations.tsv", sep="\t")
    r203k = escapes[(escapes.oligo == "China-CDC-N-F") & (escapes.mutation == "GGG28881AAC")].iloc[0]
    assert r203k["amino_acid"] == "N:R203K,N:G204R" and r203k["from_3p"] == 20


def test_omicron_deletion_removes_the_nih_thailand_reverse_primer(pango_run):
    """Verified by hand: BA.1 carries a 9-nt deletion at 28362-28370 (N:E31-S33del) inside the site of the
    NIH Thailand N-gene reverse primer (reverse complement of CCCCACTGCGTTCTCCATT, 28351-28369): more than
    two gap nucleotides, so no site; the assay is not detected in BA.1 but is in lineage B."""
    assert _raw_columns("BA.1", 28362, 28370) == "---------"
    result, out = pango_run
    calls = pd.read_parquet(out / "oligo_calls")
    ba1 = calls[(calls.genome == "BA.1") & (calls.oligo == "WH-NIC N-R")].iloc[0]
    assert ba1["call"] == "fails" and ba1["start"] == -1
    assert ba1["mutations"] == "del28362-28370"  # the lost site is explained by aligning the reference site
    assays = pd.read_parquet(out / "assay_calls")
    assert assays[(assays.genome == "BA.1") & (assays.assay == "NIH: N gene")].iloc[0]["call"] == "not detected"
    assert assays[(assays.genome == "B") & (assays.assay == "NIH: N gene")].iloc[0]["call"] == "detected"


def test_cdc_n1_probe_mismatch_in_omicron(pango_run):
    """C28311T (N:P13L) lies under the CDC N1 probe (28309-28332) at the probe's 22nd base from its 3' end."""
    assert _raw_columns("BA.1", 28311, 28311) == "T"
    _, out = pango_run
    calls = pd.read_parquet(out / "oligo_calls")
    row = calls[(calls.genome == "BA.1") & (calls.oligo == "2019-nCoV-N1-P")].iloc[0]
    assert row["call"] == "degraded" and row["mutations"] == "C28311T" and row["mismatch_from_3p"] == "22"
    assays = pd.read_parquet(out / "assay_calls")
    n1 = assays[(assays.genome == "BA.1") & (assays.assay == "US CDC: 2019-nCoV_N1")].iloc[0]
    assert n1["call"] == "at risk" and "2019-nCoV-N1-P" in n1["reason"]
    shift = _raw_columns("BA.1", 1, 28286).count("-")  # deletions upstream of the amplicon in BA.1
    assert (n1["amplicon_start"], n1["amplicon_end"]) == (28287 - shift, 28358 - shift)


def test_exclusivity_against_near_neighbours(pango_run):
    """Sarbecovirus-wide assays (Charité E and RdRp, CDC N3, dropped by CDC for this reason) also detect
    SARS-CoV-1; no assay detects MERS-CoV or the seasonal coronaviruses."""
    _, out = pango_run
    ex = pd.read_csv(out / "exclusivity_assays.tsv", sep="\t")
    sars1 = set(ex[(ex.record == "NC_004718.3") & (ex.outcome == "detected")].assay)
    assert {"WHO / Charité: E gene", "WHO / Charité: RdRP gene", "US CDC: 2019-nCoV_N3"} <= sars1
    assert "US CDC: 2019-nCoV_N1" not in sars1
    others = ex[ex.record != "NC_004718.3"]
    assert not (others.outcome == "detected").any()


def test_outputs_summary_and_report(pango_run):
    result, out = pango_run
    for name in ("oligo_calls.tsv", "assay_calls.tsv", "summary.json", "report.html", "group_summary.tsv",
                 "lineage_summary.tsv", "escape_mutations.tsv"):
        assert (out / name).stat().st_size > 0, name
    assert not list(out.glob(".*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["genomes"] == len(LINEAGES)
    assert summary["counts"]["oligos"] == 247
    every = pd.read_parquet(out / "oligo_calls")  # the dataset holds every genome x oligo
    assert len(every) == len(LINEAGES) * 247
    rows = pd.read_csv(out / "oligo_calls.tsv", sep="\t")  # the TSV the rows a person opens: all but 'binds'
    assert len(rows) == (every.call != "binds").sum() > 0 and "binds" not in set(rows.call)
    assays = pd.read_csv(out / "assay_calls.tsv", sep="\t")
    assert len(assays) == (pd.read_parquet(out / "assay_calls").call != "detected").sum()
    html = (out / "report.html").read_text()
    assert "Plotly.newPlot" in html and "China-CDC-N-F" in html and "<script>" in html
    groups = pd.read_csv(out / "group_summary.tsv", sep="\t")
    assert set(groups.assay) == {a.name for a in result.checker.assays.assays}


def test_deterministic_outputs(pango_subset, tmp_path):
    inputs = CheckInputs([DIAG_ASSAYS], [pango_subset], None, REFERENCE, ANNOTATION, ALIAS_KEY, [])
    run_check(inputs, tmp_path / "a", CheckOptions(threads=1, workers=1))
    run_check(inputs, tmp_path / "b", CheckOptions(threads=2, workers=1, batch_nt=100_000))
    for name in ("oligo_calls.tsv", "assay_calls.tsv", "summary.json", "escape_mutations.tsv", "report.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_dated_isolates_with_unknown_bases(tmp_path):
    """418 GenBank isolates of 2020 with metadata: monthly summary, and 'no data' where N runs cover a site."""
    inputs = CheckInputs([DIAG_ASSAYS], [GENBANK], GENBANK_META, REFERENCE, ANNOTATION, None, [])
    result = run_check(inputs, tmp_path, CheckOptions())
    monthly = pd.read_csv(tmp_path / "monthly_summary.tsv", sep="\t")
    assert {"2020-01", "2020-03"} <= set(monthly.month)
    calls = pd.read_parquet(tmp_path / "oligo_calls")
    no_data = calls[calls.call == "no data"]
    assert len(no_data) > 0
    # every 'no data' row has unknown bases at its site, or no site where unknown bases lie
    assert ((no_data.unknown > 0) | (no_data.reason == "the expected site lies in unknown bases")).all()
    # and those genomes really hold N (or another ambiguity code)
    seqs = {r.id: r.text() for r in read_fasta(GENBANK)}
    for genome in set(no_data.genome):
        assert any(ch not in "ACGT" for ch in seqs[genome])
    assert result.genomes == 418


def _tables(folder):
    """Every output file's bytes (the Parquet datasets as sorted tables: part files depend on the chunk size)."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_dir():
            out[p.name] = pd.read_parquet(p).astype(str).to_csv()
        elif p.name not in ("manifest.json", "report.html"):
            out[p.name] = p.read_bytes()
    return out


def test_one_process_all_cores_and_a_dask_cluster_give_the_same_tables(pango_subset, tmp_path, monkeypatch):
    """The same check in this process, in two local worker processes, on a two-worker Dask LocalCluster (chunks
    of 100 kb, so each worker has several) and by the default (this process for a small collection; the first
    chunks here and the rest on worker processes past ``INLINE_NT``): identical tables."""
    import oligolab.check.pipeline as pipeline

    inputs = CheckInputs([DIAG_ASSAYS], [pango_subset], None, REFERENCE, ANNOTATION, ALIAS_KEY, [NEIGHBOURS])
    one = run_check(inputs, tmp_path / "one", CheckOptions(workers=1, batch_nt=100_000))
    cores = run_check(inputs, tmp_path / "cores", CheckOptions(workers=2, batch_nt=100_000))
    dask = run_check(inputs, tmp_path / "dask", CheckOptions(cluster="local:2", batch_nt=100_000))
    small = run_check(inputs, tmp_path / "small", CheckOptions(batch_nt=100_000))
    monkeypatch.setattr(pipeline, "INLINE_NT", 200_000)  # two chunks here, two on workers
    mixed = run_check(inputs, tmp_path / "mixed", CheckOptions(batch_nt=100_000))
    assert (one.run["where"], cores.run["where"], dask.run["where"]) == ("Inline", "LocalProcesses", "DaskCluster")
    assert (small.run["where"], mixed.run["where"]) == ("Inline", "Inline+LocalProcesses")
    assert one.run["chunks"] == mixed.run["chunks"] == 4  # 100 kb chunks of four genomes
    reference = _tables(tmp_path / "one")
    for other in ("cores", "dask", "small", "mixed"):
        assert _tables(tmp_path / other) == reference, other
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folders left


# ------------------------------------------------------------------- determinism and interrupted runs

def _cli(assays, out, *extra, env=None):
    import os
    import subprocess
    import sys

    args = [sys.executable, "-c", "from oligolab.cli import main; main()", "check", "-a", str(assays),
            "-g", str(PANGO), "-r", str(REFERENCE), "--alias-key", str(ALIAS_KEY), "--out", str(out), *extra]
    return subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _files(folder):
    """Every file under ``folder`` (Parquet parts included) by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def small_assays(tmp_path_factory):
    """Two published assays (CDC N1, China CDC N) on all 3,585 Pango genomes: quick, and every lineage
    group is formed."""
    rows = DIAG_ASSAYS.read_text().splitlines()
    keep = [rows[0]] + [r for r in rows[1:] if "2019-nCoV_N1" in r or "China-CDC-N-" in r]
    path = tmp_path_factory.mktemp("assays") / "two-assays.csv"
    path.write_text("\n".join(keep) + "\n")
    return path


def test_same_files_whatever_the_hash_seed(small_assays, tmp_path):
    """Lineage grouping used set order: EG.1 fell under XBB.1 or XBB.1.9 depending on PYTHONHASHSEED."""
    runs = [_cli(small_assays, tmp_path / f"seed{s}", env={"PYTHONHASHSEED": str(s)}) for s in (1, 2)]
    for r in runs:
        assert r.wait(timeout=600) == 0, r.stderr.read().decode()
    one, two = _files(tmp_path / "seed1"), _files(tmp_path / "seed2")
    assert one.keys() == two.keys() and "group_summary.tsv" in one
    for name in one:
        assert one[name] == two[name], name


def test_a_killed_check_leaves_the_previous_or_the_new_complete_folder(small_assays, tmp_path):
    """SIGKILL at several moments of a run (reading, checking, writing): the output folder always holds one
    complete run, file for file, and the next run leaves no temporary files behind."""
    import signal
    import time

    old_ref, new_ref, out = tmp_path / "old", tmp_path / "new", tmp_path / "out"
    one_assay = tmp_path / "one-assay.csv"
    one_assay.write_text("\n".join(ln for ln in small_assays.read_text().splitlines() if "China" not in ln) + "\n")
    assert _cli(one_assay, old_ref).wait(timeout=600) == 0
    t0 = time.perf_counter()
    assert _cli(small_assays, new_ref).wait(timeout=600) == 0
    seconds = time.perf_counter() - t0
    old, new = _files(old_ref), _files(new_ref)
    assert old != new
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.97):
        shutil.rmtree(out, ignore_errors=True)
        assert _cli(one_assay, out).wait(timeout=600) == 0
        proc = _cli(small_assays, out)
        time.sleep(seconds * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _files(out) in (old, new), fraction
    assert _cli(small_assays, out).wait(timeout=600) == 0
    assert _files(out) == new
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left of killed runs


def _kill_when(folder, n_done, kill):
    """Call ``kill`` once ``n_done`` chunks are stored in the work ``folder`` (polled)."""
    import threading
    import time

    def watch():
        deadline = time.time() + 300
        while time.time() < deadline:
            if len(list(folder.glob("*.counts"))) >= n_done:
                kill()
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _processes_with(marker: str) -> list[int]:
    """Ids of the running processes whose environment holds ``marker`` (a run and every process it started)."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def test_the_workers_of_a_killed_check_end_with_it(small_assays, tmp_path):
    """SIGKILL of a check running on local worker processes: the workers (and their forkserver) end too, instead of
    waiting for work for ever with their caches (they did, 300 MiB each)."""
    import time
    import uuid

    from oligolab.check.outputs import work_folder

    marker = f"OLIGOLAB_TEST_RUN={uuid.uuid4().hex}"
    out = tmp_path / "out"
    proc = _cli(small_assays, out, "--workers", "2", env={"OLIGOLAB_TEST_RUN": marker.split("=")[1]})
    _kill_when(work_folder(out), 2, proc.kill).join()
    proc.wait()
    deadline = time.time() + 30
    while _processes_with(marker) and time.time() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker) == []


def test_a_killed_dask_worker_and_a_resumed_run_give_the_same_tables(pango_subset, tmp_path):
    """A Dask worker killed in the middle of a run costs only its chunks (rescheduled); a run killed in the middle
    resumes from the chunks it stored: both give the tables of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys

    from distributed import Client, LocalCluster

    from oligolab.check.outputs import work_folder

    inputs = CheckInputs([DIAG_ASSAYS], [pango_subset], None, REFERENCE, ANNOTATION, ALIAS_KEY, [])
    small = dict(batch_nt=20_000)  # one genome per chunk
    run_check(inputs, tmp_path / "reference", CheckOptions(workers=1, **small))
    reference = _tables(tmp_path / "reference")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        victim = list(client.run(os.getpid).values())[0]
        out = tmp_path / "lost-worker"
        _kill_when(work_folder(out), 3, lambda: os.kill(victim, signal.SIGKILL))
        result = run_check(inputs, out, CheckOptions(cluster=cluster.scheduler_address, **small))
        assert victim not in client.run(os.getpid).values()  # the worker really died (the nanny started another)
    assert result.run["chunks"] == len(LINEAGES) and _tables(out) == reference
    # a run killed after 5 chunks, then run again: only the missing chunks are checked
    out = tmp_path / "resumed"
    code = (f"from oligolab.check import *; run_check(CheckInputs([{str(DIAG_ASSAYS)!r}], [{str(pango_subset)!r}], None,"
            f" {str(REFERENCE)!r}, {str(ANNOTATION)!r}, {str(ALIAS_KEY)!r}, []), {str(out)!r}, "
            f"CheckOptions(workers=1, batch_nt=20_000))")
    proc = subprocess.Popen([sys.executable, "-c", code])
    _kill_when(work_folder(out), 5, proc.kill).join()
    proc.wait()
    assert not out.exists()
    result = run_check(inputs, out, CheckOptions(workers=1, **small))
    assert result.run["resumed_chunks"] >= 5 and _tables(out) == reference
    assert not work_folder(out).exists()


def test_a_chunk_damaged_in_the_work_folder_is_checked_again(pango_subset, tmp_path):
    """Chunk files are not fsynced one by one; a chunk whose files a machine crash left short or changed fails its
    digests on resume and is checked again, the others are taken as stored: the tables of an uninterrupted run."""
    from oligolab.check.outputs import work_folder
    from oligolab.check.pipeline import check

    inputs = CheckInputs([DIAG_ASSAYS], [pango_subset], None, REFERENCE, ANNOTATION, ALIAS_KEY, [])
    options = CheckOptions(workers=1, batch_nt=100_000)
    run_check(inputs, tmp_path / "reference", options)
    out = tmp_path / "out"
    (tmp_path / "rows").mkdir()
    check(inputs, options, tmp_path / "rows", work_dir=work_folder(out))  # leaves its work folder, like a kill
    parts = sorted(work_folder(out).glob("*.oligo.parquet"))
    assert len(parts) == 4
    parts[1].write_bytes(parts[1].read_bytes()[:-100])  # cut short
    tsv = sorted(work_folder(out).glob("*.oligo.tsv"))[2]  # never empty: RdRP_SARSr-R1 is degraded everywhere
    text = bytearray(tsv.read_bytes())
    text[len(text) // 2] ^= 1  # same size, other content
    tsv.write_bytes(bytes(text))
    result = run_check(inputs, out, options)
    assert result.run["resumed_chunks"] == 2 and result.run["chunks"] == 4
    assert _tables(out) == _tables(tmp_path / "reference")


# ------------------------------------------------------------------------------ calls whatever the search limit

@pytest.fixture(scope="module")
def xec(tmp_path_factory):
    """The XEC consensus genome and the China CDC N-gene assay."""
    folder = tmp_path_factory.mktemp("xec")
    genome = folder / "xec.fa"
    genome.write_text("".join(f">{r.id}\n{r.text()}\n" for r in read_fasta(PANGO) if r.id in ("XEC", "A")))
    rows = DIAG_ASSAYS.read_text().splitlines()
    assays = folder / "china-n.csv"
    assays.write_text("\n".join([rows[0]] + [r for r in rows[1:] if "China-CDC-N-" in r]) + "\n")
    return assays, genome


def test_china_cdc_n_forward_in_xec_is_degraded_at_any_search_limit(xec, tmp_path):
    """XEC's four differences under China CDC N-F all sit in its 5'-most four bases (GGGG28881AACC): the Tm drops
    by about 7 °C and the primer still extends. It was 'fails: no site with <= 3 differences' at -k 3 and failed
    by a four-differences rule at -k 4; now the site is aligned where it should be and called by the rules."""
    assays, genome = xec
    for k in range(0, 9):
        run_check(CheckInputs([assays], [genome], None, REFERENCE), tmp_path / f"k{k}",
                  CheckOptions(max_mismatches=k, workers=1))
        rows = pd.read_parquet(tmp_path / f"k{k}" / "oligo_calls").astype({"genome": str, "oligo": str})
        row = rows[(rows.genome == "XEC") & (rows.oligo == "China-CDC-N-F")].iloc[0]
        assert row["call"] == "degraded", (k, row["reason"])
        assert row["mismatch_from_3p"] == "22,21,20,19" and row["mutations"] == "GGGG28881AACC"
        assert 6 < row["tm_drop_C"] < 9 and "tm_drop" in row["reason"] or "mismatches" in row["reason"]
        lineage_a = rows[(rows.genome == "A") & (rows.oligo == "China-CDC-N-F")].iloc[0]
        assert lineage_a["call"] == "binds"


#: assayM (github.com/raeece/assayM, python/deltag.tsv and tests/expected.tsv @ 94e368b): ΔG of the US CDC N1-N3
#: forward primers on the Wuhan-Hu-1 reference, primer3-py calcEndStability with its defaults of the time (50 mM
#: monovalent, no Mg2+, 0.8 mM dNTP, 50 nM oligo, 37 °C) on the template with 20 nt on each side of the site.
ASSAYM_FORWARD_DG = {"2019-nCoV-N1-F": -18.082843, "2019-nCoV-N2-F": -18.541678, "2019-nCoV-N3-F": -19.979291}


def test_dg_matches_assaym_for_the_cdc_forward_primers_under_its_conditions(tmp_path):
    """With assayM's conditions in the rule file, ΔG on the flanked template is within 0.1 kcal/mol of assayM's
    figures. (Its reverse-primer figures pair the primer's reverse complement with the genome's top strand, i.e. the
    primer's own sequence with itself: they measure no binding and are not matched.)"""
    rules = tmp_path / "assaym-rules.toml"
    text = (ROOT / "src/oligolab/knowledge/check-rules.toml").read_text()
    start, end = text.index("[conditions]"), text.index("[[rule]]")
    rules.write_text(text[:start] + "[conditions]\nmonovalent_mM = 50.0\ndivalent_mM = 0.0\ndntp_mM = 0.8\n"
                     "oligo_nM = 50.0\ntemperature_C = 37.0\ntemplate_flank_nt = 20\n\n" + text[end:])
    rows = DIAG_ASSAYS.read_text().splitlines()
    assays = tmp_path / "cdc.csv"
    assays.write_text("\n".join([rows[0]] + [r for r in rows[1:] if "2019-nCoV-N" in r]) + "\n")
    run_check(CheckInputs([assays], [REFERENCE], None, REFERENCE), tmp_path / "out",
              CheckOptions(rules_path=str(rules), workers=1))
    calls = pd.read_parquet(tmp_path / "out" / "oligo_calls").astype({"oligo": str})
    for oligo, dg in ASSAYM_FORWARD_DG.items():
        assert abs(calls[calls.oligo == oligo].iloc[0]["dg_kcal"] - dg) <= 0.1, oligo
    # the shipped rules use 1 flanking base: nearest-neighbour thermodynamics reads only the base next to each end
    rules.write_text(rules.read_text().replace("template_flank_nt = 20", "template_flank_nt = 1"))
    run_check(CheckInputs([assays], [REFERENCE], None, REFERENCE), tmp_path / "one",
              CheckOptions(rules_path=str(rules), workers=1))
    one = pd.read_parquet(tmp_path / "one" / "oligo_calls").astype({"oligo": str})
    assert one.dg_kcal.tolist() == calls.dg_kcal.tolist() and one.tm_C.tolist() == calls.tm_C.tolist()


def test_the_report_explains_the_who_rdrp_design_mismatch(pango_run):
    """WHO RdRp R1 carries S where the reference (and nearly every genome) has T on the + strand: a design mismatch
    reported once with its consequence, not a mutation in 3,584 genomes."""
    result, out = pango_run
    design = pd.read_csv(out / "design_mismatches.tsv", sep="\t").set_index("oligo")
    r1 = design.loc["RdRP_SARSr-R1"]
    assert r1["from_3p_oligo_vs_reference"] == "15: oligo S vs reference A (genome + strand: T)"
    assert r1["call_on_reference"] == "degraded" and r1["genomes_by_design"] == len(LINEAGES)
    rows = pd.read_parquet(out / "oligo_calls").astype({"oligo": str, "cause": str, "call": str})
    r1_rows = rows[rows.oligo == "RdRP_SARSr-R1"]
    assert (r1_rows.cause == "design").all() and (r1_rows.design_mismatch_from_3p.astype(str) == "15").all()
    escapes = pd.read_csv(out / "escape_mutations.tsv", sep="\t")
    assert "RdRP_SARSr-R1" not in set(escapes.oligo)  # not counted as a mutation
    html = (out / "report.html").read_text()
    assert "Design mismatches" in html and "oligo S vs reference A (genome + strand: T)" in html
    assert "some at risk" in html and "all lost" in html  # at risk and lost have their own colours


def test_previous_run_reports_what_changed(tmp_path):
    """The 418 dated GenBank isolates of 2020 as two snapshots (collected up to March, then all): the second check,
    given the first, names the new genomes, lineages and mutations that degrade or escape each assay, with dates."""
    meta = read_metadata(GENBANK_META)
    early = [r for r in read_fasta(GENBANK) if meta.date(r.id) and meta.date(r.id).isoformat() <= "2020-03-31"]
    first = tmp_path / "early.fa"
    first.write_text("".join(f">{r.id}\n{r.text()}\n" for r in early))
    run_check(CheckInputs([DIAG_ASSAYS], [first], GENBANK_META, REFERENCE, ANNOTATION), tmp_path / "march",
              CheckOptions(workers=1))
    run_check(CheckInputs([DIAG_ASSAYS], [GENBANK], GENBANK_META, REFERENCE, ANNOTATION,
                          previous=tmp_path / "march"), tmp_path / "later", CheckOptions(workers=1))
    changes = pd.read_csv(tmp_path / "later" / "changes.tsv", sep="\t", dtype=str)
    new = changes[changes.change.str.startswith("new genome")]
    assert len(new) > 0 and (new.date > "2020-03-31").all()
    assert not set(new.genome) & {r.id for r in early}
    mutations = changes[changes.change == "new escape mutation"]
    assert len(mutations) > 0 and (mutations.date > "2020-03-31").all()
    assert "first collected 2020-" in mutations.iloc[0].detail
    watch = json.loads((tmp_path / "later" / "assay_watch.json").read_text())
    assert watch["previous_genomes"] == len(early)
    assert sum(a["new_genome_at_risk"] + a["new_genome_not_detected"] for a in watch["assays"].values()) == len(new)
    assert "Changes since the previous check" in (tmp_path / "later" / "report.html").read_text()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_modes_follow_the_umask(pango_subset, tmp_path, umask):
    """Every file and folder of a check (the Parquet parts included) gets the mode the user's umask gives, so the lab
    group can open the report (they were all 0600)."""
    import os

    inputs = CheckInputs([DIAG_ASSAYS], [pango_subset], None, REFERENCE)
    old = os.umask(umask)
    try:
        run_check(inputs, tmp_path / "out", CheckOptions(workers=1, batch_nt=100_000))
    finally:
        os.umask(old)
    paths = [tmp_path / "out", *(tmp_path / "out").rglob("*")]
    assert len(paths) > 15
    for p in paths:
        assert p.stat().st_mode & 0o777 == (0o777 if p.is_dir() else 0o666) & ~umask, p


def test_results_do_not_depend_on_what_the_caches_hold(pango_subset, tmp_path, monkeypatch):
    """A worker starts its window cache and site book afresh past a memory budget; with a budget of nothing (fresh
    caches after every chunk) the tables are those of a run that keeps everything."""
    from oligolab.check.checker import Checker

    inputs = CheckInputs([DIAG_ASSAYS, ARTIC], [pango_subset], None, REFERENCE, ANNOTATION, ALIAS_KEY)
    run_check(inputs, tmp_path / "kept", CheckOptions(workers=1, batch_nt=100_000))
    original = Checker.trim
    monkeypatch.setattr(Checker, "trim", lambda self: original(self, max_sites=0, max_windows=0))
    run_check(inputs, tmp_path / "fresh", CheckOptions(workers=1, batch_nt=100_000))
    assert _tables(tmp_path / "fresh") == _tables(tmp_path / "kept")
