"""Accessioning readers (oligolab.lab.accessioning): a CSV list and a FHIR R4 order bundle give the same
specimens; bad files are refused in one line naming the file, line or entry and the fix; fuzzing finds no other
exception than InputError."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from day_support import HEADER, day_csv, order_bundle
from oligolab.errors import InputError
from oligolab.lab.accessioning import parse_accession_csv, parse_fhir_orders

UTC = dt.timezone.utc


def test_csv_day_of_96_specimens_with_local_times():
    recs = parse_accession_csv(day_csv(96), "day.csv", tz="Europe/Moscow", default_test="CDC")
    assert len(recs) == 96 and recs[0].specimen_id == "SYK-0001" and recs[0].patient_name == "Иванов Алексей"
    assert recs[0].collected_at == dt.datetime(2026, 12, 4, 4, 0, tzinfo=UTC)       # 07:00 Moscow = 04:00 UTC
    assert recs[0].test == "CDC" and recs[0].order_id == "SYK-0001" and recs[0].sex == "male"
    assert recs[1].sex == "male" and recs[8].patient_name == "Иванова Мария" and recs[8].sex == "female"
    assert recs[0].birth_date == dt.date(1950, 1, 10) and recs[0].where == "day.csv, line 2"
    # the same list in another zone is another instant
    recs_yakutsk = parse_accession_csv(day_csv(1), tz="Asia/Yakutsk", default_test="CDC")
    assert recs_yakutsk[0].collected_at == dt.datetime(2026, 12, 3, 22, 0, tzinfo=UTC)


def test_csv_russian_headers_semicolons_and_windows_1251():
    text = ("Номер образца;Пациент;Код пациента;Дата и время взятия;Направитель;Исследование;Пол\n"
            "AST-1;P-77;X7F2;05.12.2026 08:15;Поликлиника № 1;ПЦР SARS-CoV-2;Ж\n")
    recs = parse_accession_csv(text.encode("cp1251"), "ast.csv", tz="Europe/Astrakhan")
    r = recs[0]
    assert (r.specimen_id, r.patient_id, r.pseudonym, r.patient_name) == ("AST-1", "P-77", "X7F2", "")
    assert r.patient_label == "X7F2" and r.sex == "female" and r.test == "ПЦР SARS-CoV-2"
    assert r.collected_at == dt.datetime(2026, 12, 5, 4, 15, tzinfo=UTC)             # UTC+4
    assert r.submitter == "Поликлиника № 1"


@pytest.mark.parametrize("body, message", [
    ("specimen_id,patient_id,patient_name,collected_at,test\n", "header but no specimens"),
    ("specimen,patient_name,collected_at\nA,B,2026-12-01 10:00\n", "no patient_id column"),
    ("specimen_id,patient_id,collected_at\nA,B,2026-12-01 10:00\n", "neither a patient_name nor a pseudonym"),
    ("specimen_id,patient_id,patient_name,collected_at,test\nA 1,P,N,2026-12-01 10:00,T\n", "not a label id"),
    ("specimen_id,patient_id,patient_name,collected_at,test\nA1,P,N,yesterday,T\n", "not a date and time"),
    ("specimen_id,patient_id,patient_name,collected_at,test\nA1,P,N,2099-01-01 10:00,T\n", "in the future"),
    ("specimen_id,patient_id,patient_name,collected_at,test\nA1,P,,2026-12-01 10:00,T\n", "neither a name"),
    ("specimen_id,patient_id,patient_name,collected_at,test\nA1,P,N,2026-12-01 10:00,\n", "no test ordered"),
    ("specimen_id,patient_id,patient_name,collected_at,test,sex\nA1,P,N,2026-12-01 10:00,T,x\n", "sex 'x'"),
    ("specimen_id,patient_id,patient_name,collected_at,test\nA1,P,N,2026-12-01 10:00,T\n"
     "A1,Q,M,2026-12-01 10:05,T\n", "listed twice (first at bad.csv, line 2)"),
])
def test_csv_bad_input_is_one_line_with_line_and_fix(body, message):
    with pytest.raises(InputError) as err:
        parse_accession_csv(body.encode(), "bad.csv")
    text = str(err.value)
    assert message in text and text.startswith("bad.csv") and "fix:" in text and "\n" not in text
    if "listed twice" in message:
        assert "line 3" in text
    elif "header" not in message and "column" not in message and "pseudonym" not in message:
        assert "line 2" in text


def test_fhir_orders_give_the_same_specimens_as_the_csv():
    recs = parse_fhir_orders(order_bundle(5), "orders.json", tz="Europe/Moscow")
    assert [r.specimen_id for r in recs] == [f"ARH-{i:04d}" for i in range(1, 6)]
    r = recs[2]
    assert r.patient_id == "P100002" and r.patient_name == "Кузнецов Алексей" and r.order_id == "ORD-ARH-0003"
    assert r.collected_at == dt.datetime(2026, 12, 4, 4, 6, tzinfo=UTC) and r.test == "SARS-CoV-2 RNA"
    assert r.specimen_type == "мазок из носоглотки" and r.where == "orders.json, entry 7"
    assert r.submitter.startswith("ГБУЗ")


def _bundle_with(mutate) -> bytes:
    doc = json.loads(order_bundle(2))
    mutate(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["entry"][2]["resource"].update(specimen=[{"reference": "urn:uuid:nowhere"}]), "not in the bundle"),
    (lambda d: d["entry"][2]["resource"].update(subject={"reference": d["entry"][1]["fullUrl"]}),
     "points to a Specimen"),
    (lambda d: d["entry"][1]["resource"].pop("collection"), "no collection.collectedDateTime"),
    (lambda d: d["entry"][1]["resource"].update(identifier=[{"value": "has space"}]), "not a label id"),
    (lambda d: d["entry"][0]["resource"].update(gender=17), "not a valid FHIR R4 Bundle"),
    (lambda d: d["entry"].append({"resource": {"resourceType": "Observation"}}), "not a Patient, Specimen"),
    (lambda d: [d["entry"].pop(2), d["entry"].pop(4)], "no ServiceRequest"),
    (lambda d: d["entry"][4].update(resource=dict(d["entry"][1]["resource"])), "listed twice"),
])
def test_fhir_bad_input_names_the_entry(mutate, message):
    with pytest.raises(InputError) as err:
        parse_fhir_orders(_bundle_with(mutate), "orders.json")
    assert message in str(err.value) and str(err.value).startswith("orders.json")


def test_fhir_not_json_or_not_a_bundle():
    for data, msg in ((b"\xff\xfe<xml", "not JSON"), (b'{"resourceType": "Patient"}', "not a FHIR Bundle"),
                      (b"[1, 2]", "not a FHIR Bundle")):
        with pytest.raises(InputError, match=msg):
            parse_fhir_orders(data, "x.json")


# -------------------------------------------------------------------------------------------------- fuzz

CELLS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
GOOD = day_csv(3).decode()


@pytest.mark.fuzz
@given(rows=st.lists(st.lists(CELLS, max_size=len(HEADER) + 2), max_size=6), header=st.booleans(),
       delim=st.sampled_from([",", ";", "\t"]))
def test_fuzz_accession_csv(rows, header, delim):
    lines = ([delim.join(HEADER)] if header else []) + [delim.join(r) for r in rows]
    try:
        parse_accession_csv("\n".join(lines).encode(), "fuzz.csv", tz="Europe/Moscow")
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.csv")


@pytest.mark.fuzz
@given(data=st.binary(max_size=300), cut=st.integers(0, len(GOOD)))
def test_fuzz_accession_csv_bytes(data, cut):
    for blob in (data, GOOD[:cut].encode() + data, GOOD.encode()[:cut]):
        try:
            parse_accession_csv(blob, "fuzz.csv")
        except InputError:
            pass


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | CELLS,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CELLS, inner, max_size=4),
                    max_leaves=20)
GOOD_BUNDLE = json.loads(order_bundle(1))


@pytest.mark.fuzz
@given(entry=st.integers(0, 2), key=st.sampled_from(["identifier", "subject", "specimen", "collection", "code",
                                                     "name", "birthDate", "gender", "requester", "id", "type"]),
       value=JSON)
def test_fuzz_fhir_orders(entry, key, value):
    doc = json.loads(json.dumps(GOOD_BUNDLE))
    doc["entry"][entry]["resource"][key] = value
    try:
        parse_fhir_orders(json.dumps(doc).encode(), "fuzz.json")
    except InputError as exc:
        assert "\n" not in str(exc)


@pytest.mark.fuzz
@given(doc=JSON)
def test_fuzz_fhir_orders_any_json(doc):
    for d in (doc, {"resourceType": "Bundle", "type": "transaction", "entry": doc}):
        try:
            parse_fhir_orders(json.dumps(d).encode(), "fuzz.json")
        except InputError:
            pass
