"""Accessioning: the specimens a laboratory receives, read from a CSV list or a FHIR R4 bundle of orders.

One :class:`Accession` per specimen: specimen id (the barcode on the tube), patient id and name or a
pseudonymous code, birth date and sex when given, collection time (stored in UTC; a time without an offset is
the lab's local time), submitter, the test ordered, the specimen type and the order number.

Both readers check every record before returning any, and raise only :class:`oligolab.errors.InputError` (file,
line or record, problem, fix in one line), in time and memory bounded by :data:`MAX_BYTES` and
:data:`MAX_RECORDS`.

CSV columns (case-insensitive, English or Russian headers; comma, semicolon or tab; UTF-8 or Windows-1251):
``specimen_id``, ``patient_id``, ``patient_name`` or ``pseudonym``, ``birth_date``, ``sex``, ``collected_at``,
``submitter``, ``test``, ``specimen_type``, ``order_id`` (see :data:`COLUMNS` for the accepted names).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import InputError

#: the largest accessioning file read (bytes): a day of a busy lab is well under 1 MB
MAX_BYTES = 20 << 20
#: the most specimens in one file
MAX_RECORDS = 50_000
#: longest field (characters); a specimen id must fit a barcode label
MAX_FIELD = 200
MAX_ID = 40
#: specimen and patient ids: printable ASCII without spaces (Code 128 encodes them as they are)
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
SEXES = {
    "male": "male",
    "m": "male",
    "м": "male",
    "муж": "male",
    "мужской": "male",
    "female": "female",
    "f": "female",
    "ж": "female",
    "жен": "female",
    "женский": "female",
    "other": "other",
    "unknown": "unknown",
    "u": "unknown",
    "": "unknown",
    "не указан": "unknown",
}
#: accepted column names per field (lower case)
COLUMNS: dict[str, tuple[str, ...]] = {
    "specimen_id": (
        "specimen_id",
        "specimen",
        "specimen id",
        "sample_id",
        "sample id",
        "barcode",
        "tube",
        "номер образца",
        "образец",
        "штрихкод",
        "штрих-код",
        "номер пробы",
        "проба",
    ),
    "patient_id": (
        "patient_id",
        "patient id",
        "patient",
        "mrn",
        "идентификатор пациента",
        "пациент",
        "номер пациента",
        "полис",
    ),
    "patient_name": ("patient_name", "patient name", "name", "фио", "фио пациента"),
    "pseudonym": ("pseudonym", "code", "pseudonymous code", "псевдоним", "код пациента", "код"),
    "birth_date": ("birth_date", "birth date", "dob", "date of birth", "дата рождения"),
    "sex": ("sex", "gender", "пол"),
    "collected_at": (
        "collected_at",
        "collected",
        "collection time",
        "collection_time",
        "время взятия",
        "дата взятия",
        "дата и время взятия",
    ),
    "submitter": (
        "submitter",
        "sender",
        "ordering facility",
        "requester",
        "направившее учреждение",
        "направитель",
        "отправитель",
    ),
    "test": ("test", "test ordered", "assay", "исследование", "тест", "назначение"),
    "specimen_type": ("specimen_type", "specimen type", "material", "тип образца", "материал", "биоматериал"),
    "order_id": ("order_id", "order", "order number", "номер направления", "направление"),
}
REQUIRED = ("specimen_id", "patient_id", "collected_at")
FIX_COLUMNS = (
    "columns specimen_id, patient_id, patient_name or pseudonym, collected_at, submitter, test "
    "(docs/day.md, accessioning)"
)


@dataclass(frozen=True)
class Accession:
    """One received specimen and what was ordered for it."""

    specimen_id: str
    patient_id: str
    collected_at: _dt.datetime  #: aware, UTC
    patient_name: str = ""
    pseudonym: str = ""
    birth_date: _dt.date | None = None
    sex: str = "unknown"  #: FHIR administrative gender: male | female | other | unknown
    submitter: str = ""
    test: str = ""
    specimen_type: str = ""
    order_id: str = ""  #: the requester's order number (the specimen id when not given)
    where: str = ""  #: file and line or entry it came from

    @property
    def patient_label(self) -> str:
        """What a page shows for the patient: the name, or the pseudonymous code."""
        return self.patient_name or self.pseudonym or self.patient_id


# ------------------------------------------------------------------------------------------ field checks


def check_id(value: str, what: str, where: str, *, line: int | None = None, record: str | None = None) -> str:
    value = value.strip()
    if not value:
        raise InputError(where, f"the {what} is empty", f"give every specimen a {what}", line=line, record=record)
    if len(value) > MAX_ID or not ID_RE.match(value):
        raise InputError(
            where,
            f"the {what} '{value[:60]}' is not a label id",
            f"use up to {MAX_ID} letters, digits and . _ : / - (no spaces), as printed on the tube",
            line=line,
            record=record,
        )
    return value


def parse_time(
    value: str,
    tz: ZoneInfo,
    where: str,
    *,
    line: int | None = None,
    record: str | None = None,
    now: _dt.datetime | None = None,
) -> _dt.datetime:
    """A collection time as aware UTC: ISO 8601 (with or without offset) or DD.MM.YYYY HH:MM; a time without
    an offset is the lab's local time ``tz``. A time more than an hour in the future is refused."""
    text = value.strip()
    parsed: _dt.datetime | None = None
    for fmt in ("%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y"):
        try:
            parsed = _dt.datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = _dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
        except ValueError:
            parsed = None
    if parsed is None:
        raise InputError(
            where,
            f"collection time '{text[:40]}' is not a date and time",
            "write 2026-12-05 09:30 (lab time), 2026-12-05T09:30+03:00 or 05.12.2026 09:30",
            line=line,
            record=record,
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    utc = parsed.astimezone(_dt.UTC)
    if utc > (now or _dt.datetime.now(_dt.UTC)) + _dt.timedelta(hours=1):
        raise InputError(
            where,
            f"collection time {text} is in the future",
            "check the date and the time zone of the file",
            line=line,
            record=record,
        )
    if utc.year < 1900:
        raise InputError(where, f"collection time {text} is before 1900", "check the date", line=line, record=record)
    return utc


def parse_date(value: str, where: str, *, line: int | None = None, record: str | None = None) -> _dt.date | None:
    text = value.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            day = _dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if day.year < 1880 or day > _dt.date.today():
            break
        return day
    raise InputError(
        where,
        f"birth date '{text[:40]}' is not a past date",
        "write 1980-04-17 or 17.04.1980",
        line=line,
        record=record,
    )


def parse_sex(value: str, where: str, *, line: int | None = None, record: str | None = None) -> str:
    key = value.strip().lower()
    if key in SEXES:
        return SEXES[key]
    raise InputError(
        where, f"sex '{value[:20]}' is not known", "use male/female/other/unknown (or М/Ж)", line=line, record=record
    )


def _text(value: str, what: str, where: str, line: int | None, record: str | None) -> str:
    value = value.strip()
    if len(value) > MAX_FIELD or any(ord(c) < 32 for c in value):
        raise InputError(
            where,
            f"the {what} is longer than {MAX_FIELD} characters or has control characters",
            "shorten it to one plain line",
            line=line,
            record=record,
        )
    return value


def check_unique(records: Iterable[Accession]) -> list[Accession]:
    """The records, refusing a specimen id given twice (naming both places)."""
    seen: dict[str, str] = {}
    out = []
    for r in records:
        if r.specimen_id in seen:
            raise InputError(
                r.where,
                f"specimen '{r.specimen_id}' is listed twice (first at {seen[r.specimen_id]})",
                "give each tube its own specimen id",
            )
        seen[r.specimen_id] = r.where
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------- CSV


def _decode(data: bytes, source: str) -> str:
    if len(data) > MAX_BYTES:
        raise InputError(source, f"the file is larger than {MAX_BYTES >> 20} MiB", "split it into several files")
    if b"\x00" in data[:4096]:
        raise InputError(source, "the file is binary, not a CSV text", "export the list as CSV (UTF-8)")
    for enc in ("utf-8-sig", "cp1251"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise InputError(source, "the file is not UTF-8 or Windows-1251 text", "save it as CSV UTF-8")


def _header_map(header: list[str], source: str) -> dict[str, int]:
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    cols: dict[str, int] = {}
    for field, aliases in COLUMNS.items():
        for i, name in enumerate(names):
            if name in aliases and field not in cols:
                cols[field] = i
    missing = [f for f in REQUIRED if f not in cols]
    if missing:
        raise InputError(source, f"no {', '.join(missing)} column in the header", FIX_COLUMNS, line=1)
    if "patient_name" not in cols and "pseudonym" not in cols:
        raise InputError(source, "neither a patient_name nor a pseudonym column", FIX_COLUMNS, line=1)
    return cols


def _csv_record(
    row: list[str], cols: Mapping[str, int], source: str, line: int, tz: ZoneInfo, default_test: str
) -> Accession:
    def get(field: str) -> str:
        i = cols.get(field)
        return row[i] if i is not None and i < len(row) else ""

    specimen = check_id(get("specimen_id"), "specimen id", source, line=line)
    rec = specimen
    patient = check_id(get("patient_id"), "patient id", source, line=line, record=rec)
    name = _text(get("patient_name"), "patient name", source, line, rec)
    pseudonym = _text(get("pseudonym"), "pseudonym", source, line, rec)
    if not name and not pseudonym:
        raise InputError(
            source,
            "the patient has neither a name nor a pseudonymous code",
            "fill patient_name or pseudonym",
            line=line,
            record=rec,
        )
    test = _text(get("test"), "test", source, line, rec) or default_test
    if not test:
        raise InputError(source, "no test ordered", "fill the test column (the assay name)", line=line, record=rec)
    order = get("order_id").strip()
    return Accession(
        specimen_id=specimen,
        patient_id=patient,
        patient_name=name,
        pseudonym=pseudonym,
        collected_at=parse_time(get("collected_at"), tz, source, line=line, record=rec),
        birth_date=parse_date(get("birth_date"), source, line=line, record=rec),
        sex=parse_sex(get("sex"), source, line=line, record=rec),
        submitter=_text(get("submitter"), "submitter", source, line, rec),
        test=test,
        specimen_type=_text(get("specimen_type"), "specimen type", source, line, rec),
        order_id=check_id(order, "order number", source, line=line, record=rec) if order else specimen,
        where=f"{source}, line {line}",
    )


def parse_accession_csv(
    data: bytes, source: str = "accessioning CSV", *, tz: str = "UTC", default_test: str = ""
) -> list[Accession]:
    """Every specimen of an accessioning CSV (bytes), checked; ``tz`` is the lab's zone for local times."""
    zone = ZoneInfo(tz)
    text = _decode(data, source).replace("\r\n", "\n").replace("\r", "\n")
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    if not first:
        raise InputError(source, "the file is empty", FIX_COLUMNS)
    delim = max(("\t", ";", ","), key=first.count) if any(d in first for d in "\t;,") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    try:
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) > MAX_RECORDS + 1:
                raise InputError(source, f"more than {MAX_RECORDS} specimens", "split the list into several files")
    except csv.Error as exc:
        raise InputError(source, f"not a readable CSV ({exc})", "save the list as CSV", line=reader.line_num) from None
    numbered = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]
    if not numbered:
        raise InputError(source, "the file has no header and no specimens", FIX_COLUMNS)
    header = numbered[0][1]
    cols = _header_map(header, source)
    records = [_csv_record(r, cols, source, line, zone, default_test) for line, r in numbered[1:]]
    if not records:
        raise InputError(source, "the file has a header but no specimens", "add one line per specimen")
    return check_unique(records)


# ------------------------------------------------------------------------------------------------ FHIR


def _fhir_error(source: str, entry: int | None, problem: str, fix: str) -> InputError:
    return InputError(source, problem, fix, record=f"entry {entry}" if entry is not None else None)


def _resolve(ref: Any, index: Mapping[str, tuple[int, dict]], kind: str, source: str, entry: int) -> tuple[int, dict]:
    target = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(target, str) or target not in index:
        raise _fhir_error(
            source,
            entry,
            f"the ServiceRequest's {kind} reference '{str(target)[:80]}' is not in the bundle",
            f"include the {kind} as an entry whose fullUrl or {kind}/id it names",
        )
    found = index[target]
    if found[1].get("resourceType") != kind:
        raise _fhir_error(
            source,
            entry,
            f"the {kind.lower()} reference points to a {found[1].get('resourceType')}",
            f"point it to a {kind}",
        )
    return found


def _identifier(resource: dict, source: str, entry: int, what: str) -> str:
    ids = resource.get("identifier") or []
    ids = ids if isinstance(ids, list) else [ids]
    value = next((i.get("value") for i in ids if isinstance(i, dict) and i.get("value")), None)
    if value is None and what == "order number":
        return ""
    if not isinstance(value, str):
        raise _fhir_error(
            source,
            entry,
            f"the {resource.get('resourceType')} has no identifier value",
            f"give it an identifier (the {what})",
        )
    return check_id(value, what, source, record=f"entry {entry}")


def _name(patient: dict) -> str:
    names = patient.get("name") or []
    if not names:
        return ""
    n = names[0]
    if n.get("text"):
        return str(n["text"])
    return " ".join([str(n.get("family") or "")] + [str(g) for g in n.get("given") or []]).strip()


def _validated_bundle(data: bytes, source: str) -> dict:
    if len(data) > MAX_BYTES:
        raise InputError(source, f"the bundle is larger than {MAX_BYTES >> 20} MiB", "send fewer orders per bundle")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(source, f"not JSON ({type(exc).__name__})", "send a FHIR R4 Bundle as JSON") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise InputError(source, "not a FHIR Bundle", "send a Bundle of ServiceRequest, Specimen and Patient")
    entries = doc.get("entry") or []
    if not isinstance(entries, list) or len(entries) > 4 * MAX_RECORDS:
        raise InputError(
            source,
            f"the bundle's entry is not a list of at most {4 * MAX_RECORDS} entries",
            "send fewer orders per bundle",
        )
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError

    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict) or res.get("resourceType") not in ("Patient", "Specimen", "ServiceRequest"):
            kind = res.get("resourceType") if isinstance(res, dict) else type(res).__name__
            raise _fhir_error(
                source,
                i,
                f"entry is a {kind}, not a Patient, Specimen or ServiceRequest",
                "send only orders: ServiceRequest with its Specimen and Patient",
            )
    try:
        Bundle.model_validate(doc)
    except (ValidationError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        raise InputError(
            source,
            "not a valid FHIR R4 Bundle (" + "; ".join(x.strip() for x in first[:3])[:300] + ")",
            "fix the named element (FHIR R4 ServiceRequest, Specimen, Patient)",
        ) from None
    return doc


def _index(entries: list[dict]) -> dict[str, tuple[int, dict]]:
    index: dict[str, tuple[int, dict]] = {}
    for i, e in enumerate(entries):
        res = e["resource"]
        if isinstance(e.get("fullUrl"), str):
            index[e["fullUrl"]] = (i, res)
        if res.get("id"):
            index[f"{res['resourceType']}/{res['id']}"] = (i, res)
    return index


def _order_record(
    i: int, sr: dict, index: Mapping[str, tuple[int, dict]], source: str, tz: ZoneInfo, default_test: str
) -> list[Accession]:
    _, patient = _resolve(sr.get("subject"), index, "Patient", source, i)
    specimens = sr.get("specimen") or []
    if not specimens:
        raise _fhir_error(source, i, "the ServiceRequest names no specimen", "add specimen: [Reference(Specimen)]")
    code = sr.get("code") or {}
    test = str(
        code.get("text")
        or next((c.get("display") or c.get("code") for c in code.get("coding") or []), "")
        or default_test
    )
    if not test:
        raise _fhir_error(source, i, "the ServiceRequest has no test code", "give code.text or code.coding")
    requester = (sr.get("requester") or {}).get("display") or ""
    base: dict[str, Any] = dict(
        patient_id=_identifier(patient, source, i, "patient id"),
        patient_name=_name(patient),
        birth_date=parse_date(str(patient.get("birthDate") or ""), source, record=f"entry {i}"),
        sex=SEXES.get(str(patient.get("gender") or "unknown"), "unknown"),
        submitter=str(requester),
        test=test,
        order_id=_identifier(sr, source, i, "order number"),
    )
    if not base["patient_name"]:
        base["pseudonym"] = base["patient_id"]
    out = []
    for ref in specimens:
        j, spec = _resolve(ref, index, "Specimen", source, i)
        collected = (spec.get("collection") or {}).get("collectedDateTime")
        if not collected:
            raise _fhir_error(source, j, "the Specimen has no collection.collectedDateTime", "give the collection time")
        sid = _identifier(spec, source, j, "specimen id")
        stype = spec.get("type") or {}
        out.append(
            Accession(
                specimen_id=sid,
                collected_at=parse_time(str(collected), tz, source, record=f"entry {j}"),
                specimen_type=str(
                    stype.get("text") or next((c.get("display") or "" for c in stype.get("coding") or []), "")
                ),
                where=f"{source}, entry {j}",
                **base,
            )
        )
    return out


def parse_fhir_orders(
    data: bytes, source: str = "FHIR bundle", *, tz: str = "UTC", default_test: str = ""
) -> list[Accession]:
    """Every specimen ordered in a FHIR R4 Bundle (JSON) of ServiceRequest, Specimen and Patient resources,
    validated with fhir.resources; references are entry fullUrls (urn:uuid:...) or ``Type/id``."""
    zone = ZoneInfo(tz)
    doc = _validated_bundle(data, source)
    entries = doc.get("entry") or []
    index = _index(entries)
    records: list[Accession] = []
    for i, e in enumerate(entries):
        if e["resource"]["resourceType"] == "ServiceRequest":
            records += _order_record(i, e["resource"], index, source, zone, default_test)
    if not records:
        raise InputError(source, "the bundle has no ServiceRequest", "send one ServiceRequest per ordered test")
    return check_unique(records)
