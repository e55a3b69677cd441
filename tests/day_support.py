"""Helpers shared by the day tests (accessioning, worklists, release, the browser day): a synthetic day of
specimens (SYNTHETIC patients: made-up names and ids, labelled so), and FHIR order bundles."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json

from serve_support import RUN

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

@functools.lru_cache(maxsize=1)
def _real_curves():
    """The shipped real run of the service tests (serve_support.RUN, a LightCycler 480 plate), the curves
    that amplified and those that stayed flat, both without a QC flag or review hold (the lab core's own
    analysis)."""
    from oligolab.lab.analysis import load_runs
    from oligolab.lab.curves import analyze_curves, prepare

    run = load_runs(RUN)[0]
    table = analyze_curves(prepare(run)).table
    clean = (table["flags"].astype(str) == "") & ~table["review"].astype(bool)
    amplified = [i for i in range(len(table)) if table["amplified"].iat[i] and clean.iat[i]]
    flat = [i for i in range(len(table)) if not table["amplified"].iat[i] and clean.iat[i]]
    return run, amplified, flat


def day_run(plate_map, positives: set[str] = frozenset(), name: str = "day run",
            inconclusive: set[str] = frozenset()) -> bytes:
    """An RDML run for a worklist's plate map made of REAL curves of the shipped LightCycler 480 run
    (serve_support.RUN), relabelled: each used well of the map gets a real curve, amplified where the well
    should amplify (every RP target, the positive control, N1/N2 of ``positives``) and one of the run's flat
    curves elsewhere; ``inconclusive`` specimens get an amplified N1 and a flat N2. Curves are reused when the map has more wells of a kind than the run; the samples in the
    file are named after their wells, so only the plate map tells which specimen is where."""
    import numpy as np
    import pandas as pd

    from oligolab.lab.formats.rdml import to_rdml_xml
    from oligolab.lab.run import make_run

    run, amplified, flat = _real_curves()
    rows, layout = [], []
    k_amp = k_flat = 0
    for r in plate_map.itertuples(index=False):
        if r.role == "empty":
            continue
        up = (r.target == "RP" and r.role != "ntc" or r.role == "pc" or (r.role == "sample" and r.sample in positives)
              or (r.sample in inconclusive and r.target == "N1"))
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


# ------------------------------------------------------------------------------- the clinic's receivers

class MllpListener:
    """A real MLLP listener (hl7apy's MLLPServer on a free port, in a thread): every ORU^R01 it receives is
    parsed and validated strictly with hl7apy and kept; it answers AA, or closes the connection without an
    answer for the first ``drop`` messages, or answers ``code`` (AE, AR) when set."""

    def __init__(self, drop: int = 0, code: str = "AA"):
        import threading

        from hl7apy.mllp import AbstractHandler, MLLPServer

        listener = self

        class Handler(AbstractHandler):
            def reply(self):
                return listener.handle(self.incoming_message)

        self.messages: list = []          # parsed hl7apy messages
        self.raw: list[str] = []
        self.drop, self.code, self.seen = drop, code, 0
        self.server = MLLPServer("127.0.0.1", 0, {"ORU^R01^ORU_R01": (Handler,)}, timeout=10)
        self.port = self.server.server_address[1]
        self.url = f"mllp://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, text: str) -> str:
        from hl7apy import VALIDATION_LEVEL
        from hl7apy.core import Message
        from hl7apy.parser import parse_message

        self.seen += 1
        if self.seen <= self.drop:
            raise ConnectionAbortedError("dropped on purpose")    # MLLPServer closes without an answer
        msg = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        msg.validate()
        self.messages.append(msg)
        self.raw.append(text)
        ack = Message("ACK", version="2.5.1")
        ack.msh.msh_3 = "TEST-HIS"
        ack.msh.msh_9 = "ACK^R01^ACK"
        ack.msh.msh_10 = f"ACK{self.seen}"
        ack.msh.msh_11 = "P"
        ack.msa.msa_1 = self.code
        ack.msa.msa_2 = msg.msh.msh_10.to_er7()
        return "\x0b" + ack.to_er7() + "\x1c\r"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FhirReceiver:
    """A real HTTP receiver of FHIR transaction bundles (http.server on a free port, in a thread): each POSTed
    bundle is validated with fhir.resources (R4) and kept; it answers 200 with a transaction-response Bundle,
    or ``fail_status`` for the first ``fail`` posts."""

    def __init__(self, fail: int = 0, fail_status: int = 503):
        import http.server
        import threading

        receiver = self
        self.bundles: list[dict] = []
        self.fail, self.fail_status, self.seen = fail, fail_status, 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = receiver.handle(body, self.headers.get("Content-Type", ""))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, body: bytes, content_type: str) -> tuple[int, dict]:
        from fhir.resources.R4B.bundle import Bundle

        self.seen += 1
        if self.seen <= self.fail:
            return self.fail_status, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "transient", "diagnostics": "try later"}]}
        assert content_type.startswith("application/fhir+json")
        doc = json.loads(body)
        Bundle.model_validate(doc)
        assert doc["type"] == "transaction"
        self.bundles.append(doc)
        return 200, {"resourceType": "Bundle", "type": "transaction-response", "entry": [
            {"response": {"status": "201 Created"}} for _ in doc["entry"]]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def day_run_csv(plate_map_csv: str, **kwargs) -> bytes:
    """:func:`day_run` for a plate map given as the CSV text the service hands out."""
    import io

    import pandas as pd

    frame = pd.read_csv(io.StringIO(plate_map_csv), dtype=str, keep_default_na=False)
    return day_run(frame, **kwargs)
