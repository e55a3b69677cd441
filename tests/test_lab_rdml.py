"""RDML import: every shipped run read and analysed end to end; older versions; damaged files refused."""

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from oligolab.errors import InputError
from oligolab.lab.analysis import analyze_file
from oligolab.lab.formats.rdml import load_rdml, parse, read_rdml, read_xml_bytes, write_rdml
from oligolab.lab.report import write_outputs

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
SHIPPED = sorted(p.name for p in DATA.glob("*.rdml"))


_RESULTS: dict = {}


def _analyzed(name: str):
    """analyze_file once per shipped file for this module (the Vermeulen file holds 64 runs)."""
    if name not in _RESULTS:
        _RESULTS[name] = analyze_file(DATA / name, gaps="repair" if "matrix_gaps" in name else "refuse")
    return _RESULTS[name]


def test_all_shipped_rdml_files_are_covered():
    assert SHIPPED == ["eva_green_a.rdml", "eva_green_b.rdml", "own_mix_a.rdml", "technical_matrix_gaps.rdml",
                       "technical_shifted_baseline.rdml", "vermeulen_data_vermeulen_std_150000_15000.rdml"]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_run_end_to_end(name, tmp_path):
    """Import -> curves -> report for every run of every shipped RDML file (the damaged one repaired)."""
    results = _analyzed(name)
    xml = read_xml_bytes(DATA / name)
    n_runs = len(re.findall(rb"<run[ >]", xml))
    n_data = len(re.findall(rb"<data>", xml))
    assert len(results) == n_runs
    assert sum(len(r.table) for r in results) == n_data
    for plate in results:
        t = plate.table
        # every amplified curve has a Cq by each method in the run's cycle range, or is held for review
        amp = t[t["amplified"]]
        assert len(amp) > 0
        for col in ("cq_td0", "cq_threshold", "cq_sdm"):
            ok = amp[col].between(1, plate.run.n_cycles)
            assert (ok | amp["review"]).all(), col
            assert ok.mean() > 0.95, col
        assert t.loc[~t["amplified"], "cq_td0"].isna().all()
        # LinRegPCR's efficiency is a quantification column: NaN where it finds no window of linearity
        eff = amp["efficiency"].dropna()
        assert eff.between(1.0, 2.6).all() and len(eff) >= 0.9 * len(amp)
    paths = write_outputs(results[0], tmp_path / "out")
    html = paths["report"].read_text()
    assert "Curves:" in html and results[0].run.name in html


def test_vermeulen_cq_methods_agree_with_published_values():
    """Our Cq methods on the Vermeulen/Ruijter 2013 benchmark track the published per-gene Cq values."""
    results = _analyzed("vermeulen_data_vermeulen_std_150000_15000.rdml")
    assert len(results) == 64
    pub = _published_cq("Standard-Cq")
    diffs = {"cq_td0": [], "cq_threshold": [], "cq_sdm": []}
    dilution = []
    for plate in results:
        gene = re.sub(r"_\d{8}$", "", plate.run.meta["run"])
        t = plate.table
        means = t.groupby("sample")[list(diffs)].mean()
        for sample, row in means.iterrows():
            if (sample, gene) in pub:
                for col in diffs:
                    diffs[col].append(row[col] - pub[(sample, gene)])
        eff = t["mean_efficiency"].iloc[0]
        dilution.append(means.loc["STD_15000", "cq_td0"] - means.loc["STD_150000", "cq_td0"] - np.log(10) / np.log(eff))
    for col, d in diffs.items():
        d = np.asarray(d)
        assert len(d) >= 120
        # a method-specific constant offset is expected; the scatter around it must be small (cycles)
        assert np.std(d) < 0.3, (col, np.std(d))
    # the instrument's Cq (LightCycler second-derivative maximum) and TD0 agree closely
    assert np.std(diffs["cq_td0"]) < 0.1
    # a 10-fold dilution shifts the Cq by log(10)/log(efficiency), as it must
    dilution = np.asarray(dilution)
    assert np.mean(np.abs(dilution) < 0.3) >= 0.95


def _published_cq(method: str) -> dict:
    out: dict = {}
    current, genes = None, []
    for line in (DATA / "vermeulen_data_vermeulen_methods_cq.tsv").read_text().splitlines():
        cells = line.split(";")
        if cells[0] == "method":
            current, genes = cells[1], cells[3:]
        elif current == method and len(cells) > 3 and cells[2].startswith("STD_"):
            for gene, value in zip(genes, cells[3:]):
                if value:
                    out.setdefault((cells[2], gene), []).append(float(value))
    return {k: float(np.mean(v)) for k, v in out.items()}


# ------------------------------------------------------------------------------------------ older versions

def _downgrade_to_13(xml: bytes) -> bytes:
    """RDML 1.4 -> 1.3: drop the 1.4-only elements of the real file, set version 1.3."""
    root = etree.fromstring(xml)
    ns = "{http://www.rdml.org}"
    for tag in ("dyeChemistry", "dyeConc", "doubleStranded", "nCopyFact", "Ncopy", "quantity", "annotation",
                "vol", "commercialAssay", "sequences"):
        for el in root.iter(ns + tag):
            el.getparent().remove(el)
    root.set("version", "1.3")
    return etree.tostring(root)


def test_reads_rdml_13_validated_against_its_schema(tmp_path):
    xml13 = _downgrade_to_13(read_xml_bytes(DATA / "own_mix_a.rdml"))
    path = tmp_path / "own_mix_a_v13.rdml"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdml_data.xml", xml13)
    root, version = parse(path)  # raises if it does not follow RDML_v1_3_REC.xsd
    assert version == "1.3"
    run13, run14 = load_rdml(path), load_rdml(DATA / "own_mix_a.rdml")
    assert np.array_equal(run13.fluor, run14.fluor)
    assert list(run13.layout["well"]) == list(run14.layout["well"])


def test_reads_rdml_10_style_well_ids_and_plain_xml(tmp_path):
    """RDML 1.0 names reactions by well ('B7') and its pcrFormat is a string; plain (unzipped) XML is read."""
    xml = read_xml_bytes(DATA / "own_mix_a.rdml").decode()
    ref = load_rdml(DATA / "own_mix_a.rdml")

    def to_well(m):
        n = int(m.group(1))
        row, col = divmod(n - 1, 24)
        return f'<react id="{chr(65 + row)}{col + 1}"'
    xml10 = re.sub(r'<react id="(\d+)"', to_well, xml).replace('version="1.4"', 'version="1.0"')
    xml10 = re.sub(r"<pcrFormat>.*?</pcrFormat>", "<pcrFormat>384-well plate; A1-P24</pcrFormat>", xml10, flags=re.S)
    path = tmp_path / "v10.xml"
    path.write_text(xml10)
    run = load_rdml(path)
    assert run.meta["rdml_version"] == "1.0"
    assert sorted(run.layout["well"]) == sorted(ref.layout["well"])
    assert np.array_equal(run.fluor, ref.fluor)


def test_rdml_writer_round_trip_is_schema_valid(tmp_path):
    ref = load_rdml(DATA / "eva_green_a.rdml")
    path = write_rdml(ref, tmp_path / "copy.rdml")
    parse(path)  # XSD 1.4
    back = load_rdml(path)
    assert np.array_equal(back.fluor, ref.fluor)
    assert (back.layout[["well", "sample", "target", "role"]].to_numpy()
            == ref.layout[["well", "sample", "target", "role"]].to_numpy()).all()


# ----------------------------------------------------------------------------------------------- bad input

def test_truncated_rdml_archive_is_refused(tmp_path):
    raw = (DATA / "own_mix_a.rdml").read_bytes()
    bad = tmp_path / "cut.rdml"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError) as err:
        read_rdml(bad)
    assert "cut.rdml" in str(err.value) and "truncated" in str(err.value)


def test_truncated_xml_inside_archive_names_the_line(tmp_path):
    xml = read_xml_bytes(DATA / "own_mix_a.rdml")
    bad = tmp_path / "cut_xml.rdml"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("rdml_data.xml", xml[: len(xml) // 3])
    with pytest.raises(InputError) as err:
        read_rdml(bad)
    assert "line" in str(err.value) and "malformed" in str(err.value)


def test_schema_violation_is_refused_with_line(tmp_path):
    xml = read_xml_bytes(DATA / "own_mix_a.rdml").decode()
    xml = xml.replace("<fluor>", "<flour>", 1).replace("</fluor>", "</flour>", 1)
    bad = tmp_path / "typo.rdml"
    bad.write_text(xml)
    with pytest.raises(InputError) as err:
        read_rdml(bad)
    assert "RDML 1.4 schema" in str(err.value) and ", line " in str(err.value)


def test_whole_number_written_with_a_decimal_point_is_read_with_a_warning(tmp_path):
    """A consortium file that writes an integer as '24.0' (the peer reads it) is read with a warning naming the
    line, to the same readings; a value that is not a whole number is still refused."""
    xml = read_xml_bytes(DATA / "own_mix_a.rdml").decode()
    assert xml.count("<columns>24</columns>") == 1
    lenient = tmp_path / "decimal_columns.rdml"
    lenient.write_text(xml.replace("<columns>24</columns>", "<columns>24.0</columns>"))
    original, read = read_rdml(DATA / "own_mix_a.rdml")[0], read_rdml(lenient)[0]
    np.testing.assert_array_equal(read.fluor, original.fluor)
    assert list(read.layout["well"]) == list(original.layout["well"]) and read.plate_columns == 24
    warning = read.meta["warnings"][0]
    assert "schema deviation" in warning and "'24.0'" in warning and "line" in warning
    assert "warnings" not in original.meta
    bad = tmp_path / "fractional_columns.rdml"
    bad.write_text(xml.replace("<columns>24</columns>", "<columns>24.5</columns>"))
    with pytest.raises(InputError) as err:
        read_rdml(bad)
    assert "RDML 1.4 schema" in str(err.value) and "24.5" in str(err.value) and ", line " in str(err.value)


def test_not_rdml_and_unknown_version(tmp_path):
    junk = tmp_path / "junk.rdml"
    junk.write_text("Well,Cycle\n")
    with pytest.raises(InputError, match="not an RDML file"):
        read_rdml(junk)
    xml = read_xml_bytes(DATA / "own_mix_a.rdml").replace(b'version="1.4"', b'version="2.0"', 1)
    v2 = tmp_path / "v2.rdml"
    v2.write_bytes(xml)
    with pytest.raises(InputError, match="unsupported RDML version '2.0'"):
        read_rdml(v2)


def test_duplicate_cycle_names_the_well(tmp_path):
    xml = read_xml_bytes(DATA / "own_mix_a.rdml").decode()
    xml = xml.replace("<cyc>2.0</cyc>", "<cyc>1.0</cyc>", 1)
    bad = tmp_path / "dup.rdml"
    bad.write_text(xml)
    with pytest.raises(InputError) as err:
        read_rdml(bad, validate=False)
    assert "cycle 1 appears twice" in str(err.value) and "record 'D11'" in str(err.value)


def test_nan_reading_in_rdml_is_refused_naming_the_well(tmp_path):
    xml = read_xml_bytes(DATA / "own_mix_a.rdml").decode()
    first = xml.index("<fluor>", xml.index("<cyc>20.0</cyc>"))
    end = xml.index("</fluor>", first)
    xml = xml[:first] + "<fluor>NaN" + xml[end:]
    bad = tmp_path / "nan.rdml"
    bad.write_text(xml)
    with pytest.raises(InputError) as err:
        analyze_file(bad)
    msg = str(err.value)
    assert "nan.rdml" in msg and "record 'D11'" in msg and "cycle(s) 20" in msg
