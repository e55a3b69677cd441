"""Audit log: overrides and sign-offs are appended, chained, applied, and tampering is detected."""

import json
import threading
from pathlib import Path

import pytest

from oligolab.errors import InputError
from oligolab.lab import audit
from oligolab.lab.analysis import analyze_file, reanalyze
from oligolab.lab.report import write_outputs

DATA = Path(__file__).resolve().parents[1] / "data" / "qpcr"
RUN = DATA / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"  # a valid plate (flat NTCs)
CDC_MAP = DATA / "exports" / "lc480_cdc_platemap.csv"


def test_entries_are_chained_and_verified(tmp_path):
    log = tmp_path / "audit.jsonl"
    e1 = audit.record_override(log, run_id="r1", subject="S-1", field="call", old="positive", new="inconclusive",
                               user="a.tech", reason="N2 curve is a bubble artifact")
    e2 = audit.record_signoff(log, run_id="r1", results_sha256="ab" * 32, user="dr.who")
    assert (e1.seq, e2.seq) == (1, 2) and e2.prev == e1.hash
    assert audit.verify(log) == 2
    entries = audit.read(log)
    assert entries[0].user == "a.tech" and entries[0].old == "positive" and entries[0].new == "inconclusive"
    assert entries[0].time.endswith("+00:00")


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_tampering_is_detected(tmp_path, tamper):
    log = tmp_path / "audit.jsonl"
    for k in range(3):
        audit.record_override(log, run_id="r", subject=f"S-{k}", field="call", old="negative", new="positive",
                              user="u", reason="r")
    lines = log.read_text().splitlines()
    if tamper == "edit":
        rec = json.loads(lines[1])
        rec["new"] = "negative"
        lines[1] = json.dumps(rec, sort_keys=True)
    elif tamper == "delete":
        del lines[1]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="altered, removed or reordered"):
        audit.verify(log)


def test_concurrent_writers_keep_one_chain(tmp_path):
    log = tmp_path / "audit.jsonl"

    def write(k):
        for j in range(10):
            audit.record_override(log, run_id="r", subject=f"S-{k}-{j}", field="call", old="a", new="b",
                                  user=f"user{k}", reason="parallel")

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert audit.verify(log) == 40


def test_override_needs_who_and_why(tmp_path):
    log = tmp_path / "audit.jsonl"
    with pytest.raises(InputError, match="reason"):
        audit.record_override(log, run_id="r", subject="S", field="call", old="a", new="b", user="u", reason=" ")
    with pytest.raises(InputError, match="user"):
        audit.record_override(log, run_id="r", subject="S", field="call", old="a", new="b", user="", reason="x")
    with pytest.raises(InputError, match="cannot be overridden"):
        audit.record_override(log, run_id="r", subject="S", field="cq", old="1", new="2", user="u", reason="x")
    assert not log.exists() or audit.verify(log) == 0


def test_overrides_flow_into_results_and_signature(tmp_path):
    out = tmp_path / "plate"
    log = out / "audit.jsonl"
    plate = analyze_file(RUN, plate_map=CDC_MAP, rules="cdc-2019-ncov", audit_log=log)[0]
    write_outputs(plate, out, html=False)
    s = plate.samples.set_index("sample")
    positive = s[s["call"] == "positive"].index[0]

    # 1) a specialist overrides a sample call
    audit.record_override(log, run_id=plate.run_id, subject=positive, field="call", old="positive",
                          new="inconclusive", user="dr.ruiz", reason="N2 curve shape atypical, retest")
    # 2) and judges one curve of another sample as not amplified: the rule set recomputes that sample's call
    other = s[(s["call"] == "positive")].index[1]
    n2_well = plate.table.query("sample == @other and target == 'N2'")["well"].iat[0]
    audit.record_override(log, run_id=plate.run_id, subject=f"{n2_well}/N2", field="amplified", old="true",
                          new="false", user="dr.ruiz", reason="spike, not amplification")
    again = reanalyze(out)
    a = again.samples.set_index("sample")
    assert a.loc[positive, "call"] == "positive" and a.loc[positive, "final_call"] == "inconclusive"
    assert "dr.ruiz" in a.loc[positive, "override"] and a.loc[positive, "status"] == "release"
    assert a.loc[other, "N2_outcome"] == "negative" and a.loc[other, "call"] == "inconclusive"
    assert "overridden:dr.ruiz" in again.table.query("well == @n2_well")["flags"].iat[0]

    # 3) sign-off records the SHA-256 of the per-sample file; the report shows it as current
    paths = write_outputs(again, out, html=False)
    import hashlib

    digest = hashlib.sha256(paths["samples"].read_bytes()).hexdigest()
    audit.record_signoff(log, run_id=again.run_id, results_sha256=digest, user="dr.ruiz")
    signed = reanalyze(out)
    assert signed.signoff is not None and signed.signoff.new == digest
    html = write_outputs(signed, out)["report"].read_text()
    assert "SIGNED" in html and "dr.ruiz" in html and "Manual overrides" in html
    assert audit.verify(log) == 3


def test_reanalysis_refuses_a_changed_run_file(tmp_path):
    src = tmp_path / "run.rdml"
    src.write_bytes((DATA / "own_mix_a.rdml").read_bytes())
    out = tmp_path / "out"
    write_outputs(analyze_file(src)[0], out, html=False)
    src.write_bytes((DATA / "own_mix_a.rdml").read_bytes() + b"\n")
    with pytest.raises(InputError, match="changed since it was analysed"):
        reanalyze(out)
