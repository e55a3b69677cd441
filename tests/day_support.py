"""Helpers shared by the day tests (accessioning, worklists, release, the browser day): a synthetic day of
specimens (SYNTHETIC patients: made-up names and ids, labelled so), and FHIR order bundles."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

#: made-up Russian names for synthetic patients (no real person)
FAMILIES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов"]
GIVEN = ["Алексей", "Мария", "Дмитрий", "Анна", "Сергей", "Ольга", "Николай", "Елена"]
FEMALE = {"Мария", "Анна", "Ольга", "Елена"}
SUBMITTERS = ["ГБУЗ РК «Сыктывкарская городская поликлиника № 3»", "ГБУЗ АО «Архангельская городская больница № 7»",
              "ГБУЗ АО «Астраханская поликлиника № 1»"]
HEADER = ["specimen_id", "patient_id", "patient_name", "birth_date", "sex", "collected_at", "submitter", "test",
          "specimen_type"]


def day_rows(n: int, *, prefix: str = "SYK", day: dt.date = dt.date(2026, 12, 4), test: str = "") -> list[list[str]]:
    """``n`` SYNTHETIC specimens of one morning: ids PREFIX-0001..., lab-local collection times 07:00 onwards."""
    rows = []
    for i in range(n):
        family, given = FAMILIES[i % len(FAMILIES)], GIVEN[(i // len(FAMILIES)) % len(GIVEN)]
        female = given in FEMALE
        family += "а" if female else ""
        when = dt.datetime.combine(day, dt.time(7, 0)) + dt.timedelta(minutes=3 * i)
        rows.append([f"{prefix}-{i + 1:04d}", f"P{100000 + i}", f"{family} {given}",
                     f"{1950 + i % 60}-0{1 + i % 9}-1{i % 9}", "female" if female else "male",
                     when.strftime("%Y-%m-%d %H:%M"), SUBMITTERS[i % len(SUBMITTERS)], test,
                     "мазок из носоглотки"])
    return rows


def day_csv(n: int, **kwargs) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    w.writerows(day_rows(n, **kwargs))
    return out.getvalue().encode()


def order_bundle(n: int, *, prefix: str = "ARH", test: str = "SARS-CoV-2 RNA") -> bytes:
    """A FHIR R4 transaction Bundle of ``n`` SYNTHETIC orders (Patient, Specimen, ServiceRequest each)."""
    entries = []
    for i, row in enumerate(day_rows(n, prefix=prefix)):
        sid, pid, name, birth, sex, when = row[:6]
        family, given = name.split(" ", 1)
        p, s, r = (f"urn:uuid:00000000-0000-4000-8000-{k}{i:011d}" for k in "abc")
        entries += [
            {"fullUrl": p, "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test:mrn",
                                                                                   "value": pid}],
                                        "name": [{"family": family, "given": [given]}], "birthDate": birth,
                                        "gender": sex}, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": s, "resource": {"resourceType": "Specimen", "identifier": [{"value": sid}],
                                        "type": {"text": "мазок из носоглотки"}, "subject": {"reference": p},
                                        "collection": {"collectedDateTime": when.replace(" ", "T") + ":00+03:00"}},
             "request": {"method": "POST", "url": "Specimen"}},
            {"fullUrl": r, "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                                        "identifier": [{"value": f"ORD-{sid}"}], "code": {"text": test},
                                        "subject": {"reference": p}, "specimen": [{"reference": s}],
                                        "requester": {"display": row[6]}},
             "request": {"method": "POST", "url": "ServiceRequest"}},
        ]
    return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries},
                      ensure_ascii=False).encode()


# ------------------------------------------------------------------------------------------ the day's run

def _eva_green_b_curves():
    """The shipped real run data/qpcr/eva_green_b.rdml and, per curve, whether it amplified without a QC flag
    (the lab core's own analysis)."""
    from oligolab.lab.analysis import load_runs
    from oligolab.lab.curves import analyze_curves, prepare

    from serve_support import RUN

    run = load_runs(RUN)[0]
    table = analyze_curves(prepare(run)).table
    clean = table["flags"].astype(str) == ""
    amplified = [i for i in range(len(table)) if table["amplified"].iat[i] and clean.iat[i]]
    flat = [i for i in range(len(table)) if not table["amplified"].iat[i]]
    return run, amplified, flat


def day_run(plate_map, positives: set[str] = frozenset(), name: str = "day run") -> bytes:
    """An RDML run for a worklist's plate map made of REAL curves of data/qpcr/eva_green_b.rdml, relabelled:
    each used well of the map gets a real curve, amplified where the well should amplify (every RP target,
    the positive control, N1/N2 of ``positives``) and one of the run's seven non-amplifying curves elsewhere.
    Curves are reused across wells (the shipped run has 246); the samples in the file are named after their
    wells, so only the plate map tells which specimen is where."""
    import numpy as np
    import pandas as pd

    from oligolab.lab.rdml import to_rdml_xml
    from oligolab.lab.run import make_run

    run, amplified, flat = _eva_green_b_curves()
    rows, layout = [], []
    k_amp = k_flat = 0
    for r in plate_map.itertuples(index=False):
        if r.role == "empty":
            continue
        up = r.target == "RP" and r.role != "ntc" or r.role == "pc" or (r.role == "sample" and r.sample in positives)
        if up:
            rows.append(amplified[k_amp % len(amplified)])
            k_amp += 1
        else:
            rows.append(flat[k_flat % len(flat)])
            k_flat += 1
        layout.append({"well": r.well, "sample": f"well {r.well}", "target": r.target, "dye": r.dye or "FAM",
                       "role": "sample"})
    rows_n, cols_n = (16, 24) if len(plate_map) > 96 else (8, 12)
    fresh = make_run(name, "day", run.fluor[np.array(rows)], run.cycles, pd.DataFrame(layout),
                     plate_rows=rows_n, plate_columns=cols_n)
    return to_rdml_xml(fresh, run_id=name)
