"""Release to the clinic: HL7 v2.5.1 ORU^R01 (hl7apy, strict) and FHIR R4 transaction bundles
(fhir.resources) of released specimen results, sent to a real MLLP listener and a real HTTP receiver started
here, with retries, backoff and the attempts recorded."""

from __future__ import annotations

import datetime as dt

import pytest

from day_support import FhirReceiver, MllpListener
from oligolab.lab.accessioning import Accession
from oligolab.lab.exports.clinical import SpecimenResult, specimen_type
from oligolab.lab.exports.fhir import Test as AssayTest
from oligolab.lab.exports.fhir_transaction import transaction
from oligolab.lab.exports.hl7v2 import oru_r01
from oligolab.lab.exports.release import Previous, Release
from oligolab.service.delivery import Endpoint, backoff, deliver, send

UTC = dt.timezone.utc
AT = dt.datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
TEST = AssayTest.for_ruleset("cdc-2019-ncov", "CDC 2019-nCoV RT-PCR (N1, N2, RP)")
SAMPLE = {"sample": "SYK-0001", "call": "positive", "final_call": "positive", "report": "2019-nCoV detected",
          "action": "Report as positive."}


def _accession(**kw) -> Accession:
    base = dict(specimen_id="SYK-0001", patient_id="P100000", collected_at=dt.datetime(2026, 12, 4, 4, tzinfo=UTC),
                patient_name="Иванов Алексей", birth_date=dt.date(1960, 1, 2), sex="male",
                submitter="Поликлиника № 3 | корпус ^2", test="CDC", specimen_type="мазок из носоглотки",
                order_id="ORD-7")
    base.update(kw)
    return Accession(**base)


def _result(sample=SAMPLE, release=None, **kw) -> SpecimenResult:
    release = release or Release(2, "reviewer", "2026-12-04T10:00:00+00:00")
    return SpecimenResult(_accession(**kw), sample, release, TEST, "Сыктывкарская лаборатория",
                          "batch 3 'plate 1', version 2", "b3", dt.datetime(2026, 12, 4, 9, tzinfo=UTC))


def _parse(text: str):
    from hl7apy import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    msg.validate()
    return msg


def test_oru_r01_carries_patient_order_coded_result_and_specimen():
    msg = _parse(oru_r01(_result(), control_id="D-1", at=AT, receiving_application="HIS"))
    assert msg.msh.msh_9.to_er7() == "ORU^R01^ORU_R01" and msg.msh.msh_10.to_er7() == "D-1"
    assert msg.msh.msh_12.to_er7() == "2.5.1" and msg.msh.msh_18.to_er7() == "UNICODE UTF-8"
    pr = msg.ORU_R01_PATIENT_RESULT
    pid = pr.ORU_R01_PATIENT.PID
    assert pid.pid_3.cx_1.to_er7() == "P100000" and pid.pid_5.to_er7() == "Иванов^Алексей"
    assert pid.pid_7.to_er7() == "19600102" and pid.pid_8.to_er7() == "M"
    order = pr.ORU_R01_ORDER_OBSERVATION
    assert order.ORC.orc_2.to_er7() == "ORD-7" and order.OBR.obr_3.to_er7() == "SYK-0001"
    assert order.OBR.obr_4.to_er7().startswith("94500-6^SARS-CoV-2") and order.OBR.obr_25.to_er7() == "F"
    obx = order.ORU_R01_OBSERVATION.OBX
    assert obx.obx_5.to_er7() == "260373001^Detected^SCT" and obx.obx_8.to_er7() == "A"
    assert obx.obx_11.to_er7() == "F" and obx.obx_16.to_er7() == "reviewer"
    notes = [n.nte_3.to_er7() for n in order.ORU_R01_OBSERVATION.children if n.name == "NTE"]
    assert notes == ["2019-nCoV detected", "Report as positive.", "Result from batch 3 'plate 1', version 2"]
    spm = order.ORU_R01_SPECIMEN.SPM
    assert spm.spm_2.to_er7() == "SYK-0001" and spm.spm_4.to_er7() == "258500001^Nasopharyngeal swab^SCT"


def test_oru_r01_pseudonym_correction_and_escaping():
    prev = {"SYK-0001": Previous("negative", "2019-nCoV not detected", 1, "rev1", "2026-12-04T09:00:00+00:00")}
    r = _result(release=Release(2, "reviewer", "2026-12-04T10:00:00+00:00", previous=prev), patient_name="",
                pseudonym="X7&F2", sex="unknown", birth_date=None)
    text = oru_r01(r, control_id="D-2", at=AT)
    assert "X7\\T\\F2" in text                          # & escaped
    msg = _parse(text)
    pid = msg.ORU_R01_PATIENT_RESULT.ORU_R01_PATIENT.PID
    assert pid.pid_5.xpn_7.to_er7() == "S" and pid.pid_8.to_er7() == "U"
    obx = msg.ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION.ORU_R01_OBSERVATION.OBX
    assert obx.obx_11.to_er7() == "C"
    assert "Corrected result: replaces 'negative'" in text


def test_fhir_transaction_links_the_five_resources_and_validates():
    from fhir.resources.R4B.bundle import Bundle

    other = _result(sample={**SAMPLE, "sample": "SYK-0002", "call": "negative", "final_call": "negative",
                            "report": "2019-nCoV not detected"}, specimen_id="SYK-0002", order_id="ORD-8")
    doc = transaction([_result(), other], timestamp=AT.isoformat())
    Bundle.model_validate(doc)
    kinds = [e["resource"]["resourceType"] for e in doc["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("Specimen") == 2 and kinds.count("DiagnosticReport") == 2
    urls = {e["fullUrl"] for e in doc["entry"]}
    by = {(e["resource"]["resourceType"], e["resource"]["identifier"][0]["value"]): e for e in doc["entry"]}
    report = by[("DiagnosticReport", "SYK-0001/94500-6")]["resource"]
    obs = by[("Observation", "SYK-0001/94500-6")]
    for ref in [report["subject"], report["result"][0], *report["specimen"], *report["basedOn"],
                obs["resource"]["specimen"], obs["resource"]["subject"]]:
        assert ref["reference"] in urls
    assert obs["request"] == {"method": "PUT", "url": "Observation?identifier=urn:oligolab:result|SYK-0001/94500-6"}
    assert obs["resource"]["valueCodeableConcept"]["coding"][0]["code"] == "260373001"
    assert report["conclusionCode"][0]["coding"][0]["code"] == "260373001" and report["status"] == "final"
    assert report["category"][0]["coding"][0]["code"] == "LAB"
    spec = by[("Specimen", "SYK-0001")]
    assert spec["resource"]["type"]["coding"][0]["code"] == "258500001"
    assert spec["request"]["ifNoneExist"] == "identifier=urn:oligolab:specimen|SYK-0001"
    neg = by[("Observation", "SYK-0002/94500-6")]["resource"]
    assert neg["valueCodeableConcept"]["coding"][0]["code"] == "260415000"


def test_specimen_types_are_data():
    assert specimen_type("Мазок из носоглотки").code == "258500001"
    assert specimen_type("sputum").code == "119334006" and specimen_type("blood?") is None


# ----------------------------------------------------------------------------------- delivery over the wire

def test_mllp_delivery_to_a_real_listener_after_dropped_connections():
    listener = MllpListener(drop=2)
    waits, log = [], []
    try:
        message = oru_r01(_result(), control_id="D-3", at=AT)
        ep = Endpoint("his", "mllp", listener.url, attempts=4, backoff_s=0.5)
        out = deliver(ep, message, control_id="D-3", record=log.append, sleep=waits.append)
    finally:
        listener.close()
    assert out.delivered and [a.delivered for a in out.attempts] == [False, False, True]
    assert log == list(out.attempts) and waits == [0.5, 1.0]
    assert out.attempts[0].retry and "no acknowledgement" in out.attempts[0].detail
    assert out.detail == "MSA AA"
    assert len(listener.messages) == 1 and listener.raw[0] == message
    got = listener.messages[0].ORU_R01_PATIENT_RESULT.ORU_R01_ORDER_OBSERVATION.ORU_R01_OBSERVATION.OBX
    assert got.obx_5.to_er7() == "260373001^Detected^SCT"


def test_mllp_reject_is_not_retried_and_nobody_listening_is():
    listener = MllpListener(code="AR")
    try:
        ep = Endpoint("his", "mllp", listener.url, attempts=3, backoff_s=0)
        out = deliver(ep, oru_r01(_result(), control_id="D-4", at=AT), control_id="D-4", sleep=lambda s: None)
    finally:
        listener.close()
    assert not out.delivered and len(out.attempts) == 1 and out.detail == "MSA AR"
    gone = Endpoint("his", "mllp", listener.url, attempts=2, backoff_s=0, timeout_s=2)
    out = deliver(gone, "MSH|^~\\&|X", control_id="D-5", sleep=lambda s: None)
    assert not out.delivered and len(out.attempts) == 2 and all(a.retry for a in out.attempts)


def test_fhir_delivery_to_a_real_receiver_with_retry_on_503_not_on_400():
    receiver = FhirReceiver(fail=1)
    try:
        bundle = transaction([_result()], timestamp=AT.isoformat())
        ep = Endpoint("fhir", "fhir", receiver.url, attempts=3, backoff_s=0.25)
        waits: list[float] = []
        out = deliver(ep, bundle, sleep=waits.append)
        assert out.delivered and [a.detail for a in out.attempts] == [out.attempts[0].detail, "HTTP 200"]
        assert out.attempts[0].detail.startswith("HTTP 503") and waits == [0.25]
        assert receiver.bundles == [bundle]
    finally:
        receiver.close()
    refusing = FhirReceiver(fail=5, fail_status=400)
    try:
        out = deliver(Endpoint("fhir", "fhir", refusing.url, attempts=3), bundle, sleep=lambda s: None)
    finally:
        refusing.close()
    assert not out.delivered and len(out.attempts) == 1 and not out.attempts[0].retry


def test_backoff_doubles_up_to_a_cap_and_endpoints_are_checked():
    from oligolab.errors import InputError

    assert [backoff(n, 2.0, 10.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
    for ep, msg in ((Endpoint("a", "ftp", "ftp://x"), "unknown endpoint kind"),
                    (Endpoint("a", "mllp", "http://x:1"), "needs a mllp:// URL"),
                    (Endpoint("a", "fhir", "mllp://x:1"), "http/https"),
                    (Endpoint("a", "mllp", "mllp://host"), "names no host and port")):
        with pytest.raises(InputError, match=msg):
            ep.check()
    assert send(Endpoint("a", "fhir", "http://127.0.0.1:9/fhir", timeout_s=2), {}).retry
