"""The printable plate report: under 1 MB with no plotting library inside (curves drawn as SVG), opens
offline, curves identifiable on paper (well labels beside the curves, a plate of small charts naming every
curve), linear and log views, the instrument's Cq beside ours for every held or disagreeing curve, run-level
review reasons once, the run's date, instrument, serial, operator and reagent lots where the file has them,
and an A4 print stylesheet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from oligolab.lab.analysis import analyze_file
from oligolab.lab.report import render_html

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"


@pytest.fixture(scope="module")
def quantstudio():
    """A real 384-well QuantStudio plate: 354 curves, the instrument's CT and Undetermined per well."""
    plate = analyze_file(DATA / "realworld" / "quantstudio-export_amplification.txt")[0]
    return plate, render_html(plate, "sha")


@pytest.fixture(scope="module")
def cdc():
    plate = analyze_file(DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt",
                         plate_map=DATA / "exports" / "lc480_cdc_platemap.csv", rules="cdc-2019-ncov")[0]
    return plate, render_html(plate, "sha")


def test_report_is_small_and_carries_no_plotting_library(quantstudio, cdc):
    for _, html in (quantstudio, cdc):
        assert len(html.encode()) < 1_000_000
        assert "plotly" not in html.lower() and "<script" not in html
        assert not re.search(r'(src|href)="https?://', html)          # nothing fetched: opens offline
    # the SVG charts are well-formed XML
    for svg in re.findall(r"<svg .*?</svg>", quantstudio[1], flags=re.S)[:6]:
        etree.fromstring(svg.encode())


def test_curves_are_identifiable_on_paper(quantstudio):
    plate, html = quantstudio
    t = plate.table
    held = t.loc[t["call"] == "review", "well"]
    assert len(held) > 0
    for well in held:                                   # a label beside each held curve in the overview charts
        assert re.search(rf'font-size="7.5" fill="#d4a72c">{well}<', html), well
    # the plate of small charts names every curve with readings at its well
    plates = re.findall(r'<svg class="plate".*?</svg>', html, flags=re.S)
    named = set(re.findall(r'font-size="6">([A-P]\d+)<', "".join(plates)))
    assert named == set(t.loc[t["role"] != "empty", "well"])
    assert html.count("linear scale") == html.count("log scale") == t["target"].nunique()


def test_instrument_cq_beside_ours_for_held_and_disagreeing_curves(quantstudio):
    plate, html = quantstudio
    section = html.split("Curves held or disagreeing with the instrument")[1].split("</section>")[0]
    t = plate.table
    undetermined_amplified = t[(t["instrument_call"] == "undetermined") & t["amplified"]]
    assert len(undetermined_amplified) > 0
    shown = t[(t["instrument_call"] == "undetermined") & t["amplified"] | (t["call"] == "review") | t["review"]]
    for r in shown.itertuples():
        row = re.search(rf"<tr><td>{r.well}</td>.*?</tr>", section)
        assert row, r.well
        if r.instrument_cq == r.instrument_cq:            # the instrument's CT beside ours
            assert f"{r.instrument_cq:.2f}" in row.group(0), r.well
        if r.cq_threshold == r.cq_threshold:
            assert f"{r.cq_threshold:.2f}" in row.group(0), r.well


def test_run_facts_and_run_level_reasons_once(quantstudio, cdc):
    _, html = quantstudio
    for fact in ("2023-05-13 09:02:53 AM CST", "QuantStudio(TM) 6 Flex System", "278861596", "instrument serial"):
        assert fact in html
    plate, html = cdc
    assert plate.holds
    for reason in plate.holds:
        assert html.count(reason.split(" (")[0]) == 1        # the run-level reason, given once
    assert "Why every sample is held" in html and "the whole run is held" in html


def test_print_stylesheet_fits_a4(cdc):
    _, html = cdc
    assert "@page{size:A4 portrait" in html and "@media print" in html
    assert "overflow-wrap" in html and "thead{display:table-header-group}" in html
