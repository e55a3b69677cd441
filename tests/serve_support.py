"""Helpers shared by the lab service tests: an app on a given database, signed-in clients, PostgreSQL
databases made and dropped per test module, and the shipped real run."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# a real LightCycler 480 run whose NTC and negative wells are flat (the eva_green_b demo plate is invalid: its
# NTC wells amplify; see data/qpcr/SOURCE.md)
RUN = ROOT / "data" / "qpcr" / "Edward_qPCR_Nrd1_calibration_2019-02-02_amplification.txt"
PLATE_MAP = ROOT / "data" / "qpcr" / "exports" / "lc480_cdc_platemap.csv"
PASSWORD = "oligolab-demo"
PG_ADMIN = os.environ.get("OLIGOLAB_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), connect_timeout=3):
            return True
    except Exception:
        return False


@contextlib.contextmanager
def pg_database():
    """A fresh PostgreSQL database (URL) dropped afterwards; skips the test when no server answers."""
    if not pg_available():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 not reachable")
    import psycopg

    name = f"oligolab_test_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN.replace("+psycopg", "")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")
            c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')


def make_app(url: str, *, start_worker: bool = False, **settings):
    """The service app on ``url`` with the demo accounts (tech, reviewer, admin) of lab 'Regional laboratory'."""
    from oligolab.service import auth
    from oligolab.service.app import Settings, create_app
    from oligolab.service.db import make_engine, migrate, session_factory

    migrate(url)
    engine = make_engine(url)
    with session_factory(engine).begin() as db:
        auth.bootstrap(db, demo_password=PASSWORD)
    engine.dispose()
    return create_app(Settings(db_url=url, start_worker=start_worker, watch_inputs=None, **settings))


def token(client, username: str, password: str = PASSWORD) -> dict:
    r = client.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def upload(client, headers, run: Path = RUN, plate_map: Path | None = PLATE_MAP, assay_id: int = 1,
           name: str = "plate", run_name: str | None = None, run_bytes: bytes | None = None):
    files = {"run_file": (run_name or run.name, run_bytes if run_bytes is not None else run.read_bytes())}
    if plate_map is not None:
        files["plate_map"] = (plate_map.name, plate_map.read_bytes())
    return client.post("/api/batches", headers=headers, data={"assay_id": str(assay_id), "name": name},
                       files=files)


def drain(app) -> int:
    from oligolab.service.worker import drain as _drain

    return _drain(app.state.factory)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db_url: str, log_path: Path, *args: str, port: int | None = None):
    """``oligolab serve --db URL ARGS`` as a real process (own process group); returns (process, base URL) once
    /api/health answers, or fails with the server's log."""
    import json
    import subprocess
    import sys
    import time
    import urllib.request

    port = port or free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "oligolab.cli", "serve", "--db", db_url, "--port", str(port),
                                 *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"oligolab serve exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=2) as r:
                if json.load(r).get("status") == "ok":
                    return proc, base
        except OSError:
            pass
        time.sleep(0.25)
    stop_server(proc)
    pytest.fail(f"oligolab serve did not answer /api/health in 60 s:\n{log_path.read_text()}")


def stop_server(proc) -> None:
    import os
    import signal
    import subprocess

    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)



#: a lab rule set for tests that need a valid run whatever the amplification caller makes of this plate's
#: controls (every well of the shipped EvaGreen run holds template, so its "NTC" wells may amplify)
LENIENT_RULES = """extends: cdc-2019-ncov
id: cdc-test-controls
version: '1.0.0'
controls:
  ntc: {expect: {N1: any, N2: any, RP: any}}
  pc: {expect: {N1: any, N2: any, RP: any}}
  ec: {expect: {N1: any, N2: any, RP: any}}
"""


def lenient_assay(client, admin_headers, name: str = "CDC (test controls)") -> int:
    """A lab assay on :data:`LENIENT_RULES` (created once per database); returns its id."""
    r = client.post("/api/rulesets", headers=admin_headers, json={"name": "cdc-test-controls", "yaml": LENIENT_RULES})
    assert r.status_code in (201, 200), r.text
    r = client.post("/api/assays", headers=admin_headers, json={"name": name, "ruleset": "cdc-test-controls"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def ntc_amplified_map(dest: Path) -> Path:
    """The shipped CDC plate map with its NTC's N1 well swapped with the run's most strongly amplified well
    (largest rise of fluorescence): an invalid run whatever the amplification caller."""
    import csv as _csv

    import numpy as np

    from oligolab.lab.analysis import load_runs

    run = load_runs(RUN)[0]
    rise = np.nanmax(run.fluor, axis=1) - np.nanmin(run.fluor[:, :5], axis=1)     # fluorescence units
    strongest = run.layout["well"].iloc[int(np.nanargmax(rise))]
    rows = list(_csv.reader(PLATE_MAP.read_text().splitlines()))
    body = {r[0]: r[1:] for r in rows[1:]}
    ntc = next(w for w, r in body.items() if r[1] == "ntc" and r[2] == "N1")
    body[ntc], body[strongest] = body.get(strongest, ["", "empty", ""]), body[ntc]
    dest.write_text("\n".join(",".join(r) for r in [rows[0]] + [[w, *r] for w, r in body.items()]) + "\n")
    return dest
