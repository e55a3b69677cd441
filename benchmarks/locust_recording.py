"""Request recording shared by the locust files of bench_serve.py and bench_day.py.

Every request's response time (ms) by name, failures counted by name, both split into the ramp-up and the steady
state (the locust file sets ``window["steady"]`` when its last user has signed in), and the run's window; written
with the locust file's own counts as JSON to ``out`` when locust quits.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from locust import events


def record(out: Path, counts: dict[str, int]) -> dict[str, float]:
    """Register the listeners; returns the run's window (start, steady, stop: epoch seconds)."""
    times: dict[str, dict[str, list[float]]] = {"ramp": {}, "steady": {}}
    fails: dict[str, dict[str, int]] = {"ramp": {}, "steady": {}}
    window: dict[str, float] = {}

    @events.request.add_listener
    def _on_request(request_type, name, response_time, response_length, exception=None, **_kw):
        phase = "steady" if "steady" in window else "ramp"
        if exception is None:
            times[phase].setdefault(name, []).append(float(response_time))
        else:
            fails[phase][name] = fails[phase].get(name, 0) + 1

    @events.test_start.add_listener
    def _on_start(**_kw):
        window["start"] = time.time()

    @events.test_stop.add_listener
    def _on_stop(**_kw):
        window["stop"] = time.time()

    @events.quitting.add_listener
    def _on_quit(**_kw):
        out.write_text(json.dumps({"times_ms": times, "failures": fails, "counts": counts, "window": window}))

    return window
