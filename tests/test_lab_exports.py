"""``oligolab lab export``: the command line's FHIR and CSV exports of an analysis folder, from the same call
mapping as the service (a correction changes the texts and the code), final only while the sign-off matches."""

from __future__ import annotations

import csv
import json

from serve_support import PLATE_MAP, RUN
from typer.testing import CliRunner

from oligolab.cli import _register, app
from oligolab.lab.rules import load_ruleset


def _run(*args: str) -> None:
    _register()
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output


def test_lab_export_fhir_and_csv(tmp_path):
    out = tmp_path / "plate"
    _run("lab", "analyze", str(RUN), "--plate-map", str(PLATE_MAP), "--rules", "cdc-2019-ncov", "--out", str(out),
         "--no-html")
    folder = next(p.parent for p in out.rglob("result.json"))
    rows = list(csv.DictReader(open(folder / "samples.csv")))
    name = next(r["sample"] for r in rows if r["final_call"] != "inconclusive")
    _run("lab", "override", str(folder), "--sample", name, "--call", "inconclusive", "--user", "ana",
         "--reason", "re-read")
    _run("lab", "export", str(folder), "--format", "fhir", "--lab", "Regional laboratory")
    _run("lab", "export", str(folder), "--format", "csv")
    rule = next(c for c in load_ruleset("cdc-2019-ncov").calls if c.call == "inconclusive")
    bundle = json.loads((folder / "observations.fhir.json").read_text())
    obs = {e["resource"]["specimen"]["display"]: e["resource"] for e in bundle["entry"]}
    assert obs[name]["valueCodeableConcept"]["coding"][0]["code"] == "419984006"
    assert rule.report in obs[name]["note"][0]["text"]
    assert obs[name]["code"]["coding"][0]["code"] == "94500-6"
    assert {o["status"] for o in obs.values()} == {"preliminary"}       # not signed
    exported = {r["sample"]: r for r in csv.DictReader(open(folder / "samples.export.csv"))}
    assert exported[name]["report"] == rule.report and exported[name]["action"] == rule.action
