"""HL7 v2.5.1 ORU^R01 result messages, built and validated with hl7apy (strict validation against the
standard's message structure before a message leaves).

One message per released specimen result: MSH, PID (patient id, name or pseudonymous code, birth date, sex),
ORC/OBR (placer order = the requester's order number, filler order = the specimen id, the test's LOINC code,
collection time, release time and result status), OBX (coded value: SNOMED CT from
``knowledge/lab-exports.toml``, abnormal flag, status, responsible observer = who released it, the performing
lab), NTE (the report text and action, which run the result came from, and the change note of a correction)
and SPM (specimen id, SNOMED CT specimen type, collection time). Tables are data: ``knowledge/lab-day.toml``.
Every text goes into a leaf component, so hl7apy escapes the separators (``| ^ & ~ \\``) it may hold.
"""

from __future__ import annotations

import datetime as _dt

from ... import knowledge
from .calls import coding
from .clinical import SpecimenResult


def hl7_time(t: _dt.datetime | None) -> str:
    """An HL7 DTM (YYYYMMDDHHMMSS+ZZZZ) of an aware time; '' for none."""
    return t.strftime("%Y%m%d%H%M%S%z") if t is not None else ""


#: HL7 v2 escape sequences of the default encoding characters (HL7 v2.5.1, 2.7.4 "Special characters")
ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


def escape(text: str) -> str:
    """``text`` with the separators written as HL7 escape sequences (for values given as ER7 text)."""
    for char, seq in ESCAPES:
        text = text.replace(char, seq)
    return text


def _put(element, name: str, text: str) -> None:
    """Set a display text leaf, shortened to the length the standard allows it (ids are checked at
    accessioning to fit theirs; display texts such as a facility name may be cut)."""
    from hl7apy.exceptions import MaxLengthReached

    try:
        setattr(element, name, text)
    except MaxLengthReached as exc:
        setattr(element, name, text[: exc.limit])


def _code(field, code: str, text: str, system: str) -> None:
    """Set a CE or CWE element's identifier, text and coding system as leaf components (escaped on output)."""
    kind = field.datatype.lower()
    setattr(field, f"{kind}_1", code)
    _put(field, f"{kind}_2", text)
    setattr(field, f"{kind}_3", system)


def _patient(msg, r: SpecimenResult, tables: dict) -> None:
    from hl7apy.core import Group

    group: Group = msg.ORU_R01_PATIENT_RESULT.add_group("ORU_R01_PATIENT")
    a = r.accession
    pid = group.pid
    pid.pid_1 = "1"
    pid.pid_3.cx_1 = a.patient_id
    pid.pid_3.cx_5 = "MR"
    if a.patient_name:
        family, _, given = a.patient_name.partition(" ")
        _put(pid.pid_5.xpn_1, "fn_1", family)
        if given:
            _put(pid.pid_5, "xpn_2", given)
    else:  # pseudonymous: the code stands for the name (name type code S, "coded pseudo-name")
        _put(pid.pid_5.xpn_1, "fn_1", a.pseudonym or a.patient_id)
        pid.pid_5.xpn_7 = "S"
    if a.birth_date:
        pid.pid_7 = a.birth_date.strftime("%Y%m%d")
    pid.pid_8 = tables["sex"].get(a.sex, "U")


def _order(group, r: SpecimenResult, tables: dict, status: str, released: str) -> None:
    a, t = r.accession, r.test
    group.orc.orc_1 = tables["order_control"]
    group.orc.orc_2.ei_1 = a.order_id
    group.orc.orc_3.ei_1 = a.specimen_id
    obr = group.obr
    obr.obr_1 = "1"
    obr.obr_2.ei_1 = a.order_id
    obr.obr_3.ei_1 = a.specimen_id
    _code(obr.obr_4, t.loinc_code or t.name, t.loinc_display or t.name, tables["loinc"] if t.loinc_code else "L")
    obr.obr_7 = hl7_time(a.collected_at)
    if released:
        obr.obr_22 = released
    obr.obr_25 = tables["obr_status"].get(status, "P")


def _observation(group, r: SpecimenResult, tables: dict, status: str) -> None:
    from hl7apy.factories import datatype_factory

    obs = group.add_group("ORU_R01_OBSERVATION")
    obx = obs.obx
    t = r.test
    obx.obx_1 = "1"
    obx.obx_2 = "CWE"
    _code(obx.obx_3, t.loinc_code or t.name, t.loinc_display or t.name, tables["loinc"] if t.loinc_code else "L")
    code = coding(r.call) if status != "cancelled" else None
    if code is not None:  # OBX-5 "varies": given as ER7 text, each component escaped
        obx.obx_5 = "^".join(escape(x) for x in (code.code, code.display, tables["snomed"]))
    if tables["abnormal"].get(r.call) and code is not None:
        obx.obx_8 = tables["abnormal"][r.call]
    obx.obx_11 = tables["obx_status"].get(status, "P")
    obx.obx_14 = hl7_time(r.accession.collected_at)
    if r.release.signed_by:
        _put(obx.obx_16, "xcn_1", r.release.signed_by)
    if r.analysed_at is not None:
        obx.obx_19 = hl7_time(r.analysed_at)
    _put(obx.obx_23, "xon_1", r.lab)
    notes = [
        str(r.sample.get("report") or ""),
        str(r.sample.get("action") or ""),
        f"Result from {r.source}",
        r.release.change_note(r.sample),
    ]
    for i, text in enumerate(n for n in notes if n):
        nte = obs.add_segment("NTE")
        nte.nte_1 = str(i + 1)
        nte.nte_3 = datatype_factory("FT", text, version=tables["version"])


def _specimen(group, r: SpecimenResult, tables: dict) -> None:
    spm = group.add_group("ORU_R01_SPECIMEN").spm
    spm.spm_1 = "1"
    spm.spm_2.eip_1.ei_1 = r.accession.specimen_id
    stype = r.specimen_type
    if stype is not None:
        _code(spm.spm_4, stype.code, stype.display, tables["snomed"])
    else:
        _put(spm.spm_4, "cwe_2", r.accession.specimen_type or "unknown")
    spm.spm_17.dr_1 = hl7_time(r.accession.collected_at)


def oru_r01(
    r: SpecimenResult,
    *,
    control_id: str,
    at: _dt.datetime,
    receiving_application: str = "",
    receiving_facility: str = "",
) -> str:
    """One specimen's released result as an ER7-encoded HL7 v2.5.1 ORU^R01 message (segments end with CR),
    validated strictly by hl7apy."""
    from hl7apy import VALIDATION_LEVEL
    from hl7apy.core import Message

    tables = knowledge.lab_day()["hl7v2"]
    msg = Message("ORU_R01", version=tables["version"], validation_level=VALIDATION_LEVEL.STRICT)
    msh = msg.msh
    msh.msh_3.hd_1 = tables["sending_application"]
    _put(msh.msh_4, "hd_1", r.lab)
    if receiving_application:
        _put(msh.msh_5, "hd_1", receiving_application)
    if receiving_facility:
        _put(msh.msh_6, "hd_1", receiving_facility)
    msh.msh_7 = hl7_time(at)
    msh.msh_9 = "ORU^R01^ORU_R01"
    msh.msh_10 = control_id
    msh.msh_11 = "P"
    msh.msh_18 = tables["character_set"]
    msg.add_group("ORU_R01_PATIENT_RESULT")
    _patient(msg, r, tables)
    status = r.status
    order = msg.ORU_R01_PATIENT_RESULT.add_group("ORU_R01_ORDER_OBSERVATION")
    signed = _dt.datetime.fromisoformat(r.release.signed_at) if r.release.signed_at else None
    _order(order, r, tables, status, hl7_time(signed))
    _observation(order, r, tables, status)
    _specimen(order, r, tables)
    msg.validate()
    return msg.to_er7()
