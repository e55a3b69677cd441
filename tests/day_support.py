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
