"""`oligolab design --rescue` on real assays and genomes: the CDC N1 assay (its probe escapes C28311T) and the China
CDC N assay (its forward primer escapes GGG->AAC at 28881-28883), rescued on every 4th Pango lineage genome.
Nothing is stored: the counts come from `oligolab check` run here on the rescued assay table."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from oligolab.check import CheckInputs, CheckOptions, run_check
from oligolab.cli import main
from oligolab.design import DesignInputs, DesignOptions, rescue
from oligolab.design.outputs import write_rescue
from oligolab.sequences import read_fasta

from conftest import DIAG_ASSAYS, PANGO, REFERENCE

ASSAYS = ["US CDC: 2019-nCoV_N1", "China CDC: N gene"]


@pytest.fixture(scope="module")
def genomes(tmp_path_factory):
    path = tmp_path_factory.mktemp("rescue") / "genomes.fasta.gz"
    with gzip.open(path, "wt") as fh:
        for k, rec in enumerate(read_fasta(PANGO)):
            if k % 4 == 0:
                fh.write(f">{rec.id}\n{rec.text()}\n")
    return path


@pytest.fixture(scope="module")
def rescued(genomes, tmp_path_factory):
    out = tmp_path_factory.mktemp("rescue-out")
    res = rescue(DesignInputs([genomes], reference=REFERENCE), DIAG_ASSAYS, DesignOptions(), ASSAYS)
    write_rescue(res, out)
    return res, out


def test_rescued_assays_detect_more_genomes_by_check(rescued, genomes, tmp_path):
    res, out = rescued
    summaries = []
    for k, assays in enumerate((out / "assays.tsv", DIAG_ASSAYS)):  # the check, run on the files, separately
        run_check(CheckInputs([assays], [genomes], None, REFERENCE), tmp_path / str(k), CheckOptions())
        summaries.append(pd.read_csv(tmp_path / str(k) / "assay_summary.tsv", sep="\t").set_index("assay"))
    for r in res.assays:
        before = summaries[1].loc[r.original.name, "detected"]
        after = summaries[0].loc[r.rescued.name, "detected"]
        assert after > before, (r.original.name, before, after, r.not_rescued)
        assert (before, after) == (r.before["detected"], r.after["detected"])  # the rescue's own counts agree


def test_only_the_escaping_oligo_changes(rescued):
    res, out = rescued
    escaping = {"US CDC: 2019-nCoV_N1": "probe", "China CDC: N gene": "forward"}
    for r in res.assays:
        assert escaping[r.original.name] in r.escaping
        kept = {(o.role, o.sequence) for o in r.original.oligos if o.role not in r.escaping}
        assert kept <= {(o.role, o.sequence) for o in r.rescued.oligos}
        assert r.changes and all(c.split(":")[0] in ("shift", "degenerate", "added oligo") for c in r.changes)
    new = pd.read_csv(out / "new_oligos.tsv", sep="\t")
    assert len(new) >= len(res.assays)


def test_rescue_command_line(genomes, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["design", "--rescue", str(DIAG_ASSAYS), "--rescue-assay", "no such assay", "-g", str(genomes),
              "-r", str(REFERENCE), "-o", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "no assay named 'no such assay'" in err and "Traceback" not in err
