"""Delivery of released results to a clinic's systems: HL7 v2 messages over MLLP and FHIR transaction bundles
over HTTP(S), with retries and exponential backoff, each attempt recorded.

An :class:`Endpoint` is one configured receiver (``mllp://host:port`` or ``http(s)://.../fhir``). :func:`send`
makes one attempt and says whether it worked, and whether trying again can help: an MLLP ``AA``/``CA``
acknowledgement or an HTTP 2xx is delivered; ``AR``/``CR`` and HTTP 4xx (but 408 and 429) are refused for good
(the message itself is wrong, a person must look); no answer, a closed connection, ``AE``/``CE``, HTTP 5xx, 408
and 429 are retried. :func:`deliver` repeats :func:`send` with backoff until it is delivered, refused, or out
of attempts, and hands every :class:`Attempt` to ``record`` (the service writes them to its delivery log).

MLLP framing (HL7 v2.5.1 Appendix C, "Minimal Lower Layer Protocol"): ``<VT> message <FS><CR>``, one
message per exchange, the acknowledgement framed the same way. Acknowledgements are parsed with hl7apy.
"""

from __future__ import annotations

import datetime as _dt
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

START, END = b"\x0b", b"\x1c\r"
#: the longest acknowledgement or HTTP answer read (bytes)
MAX_ANSWER = 1 << 20
#: attempts and backoff when the endpoint does not say otherwise
ATTEMPTS = 5
BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
KINDS = ("mllp", "fhir")


@dataclass(frozen=True)
class Endpoint:
    """A configured receiver of results."""

    name: str
    kind: str  #: mllp | fhir
    url: str  #: mllp://host:port or http(s)://host/path (the FHIR base)
    receiving_application: str = ""  #: MSH-5 (MLLP)
    receiving_facility: str = ""  #: MSH-6 (MLLP)
    timeout_s: float = 10.0
    attempts: int = ATTEMPTS
    backoff_s: float = BACKOFF_S
    headers: dict[str, str] = field(default_factory=dict)  #: extra HTTP headers (e.g. Authorization)

    def check(self) -> None:
        """Refuse an endpoint that cannot work (unknown kind, URL of the wrong scheme)."""
        from ..errors import InputError

        if self.kind not in KINDS:
            raise InputError("endpoint", f"unknown endpoint kind '{self.kind}'", "use mllp or fhir", record=self.name)
        scheme = urllib.parse.urlsplit(self.url).scheme
        allowed = ("mllp",) if self.kind == "mllp" else ("http", "https")
        if scheme not in allowed:
            raise InputError(
                "endpoint",
                f"a {self.kind} endpoint needs a {'/'.join(allowed)}:// URL, not '{self.url}'",
                "e.g. mllp://his.example:2575 or https://his.example/fhir",
                record=self.name,
            )
        if self.kind == "mllp":
            parts = urllib.parse.urlsplit(self.url)
            if not parts.hostname or not parts.port:
                raise InputError(
                    "endpoint", f"'{self.url}' names no host and port", "mllp://HOST:PORT", record=self.name
                )


@dataclass(frozen=True)
class Attempt:
    """One try of one delivery."""

    endpoint: str
    number: int  #: 1, 2, ...
    at: _dt.datetime  #: UTC
    delivered: bool
    retry: bool  #: a later attempt may succeed
    detail: str  #: the acknowledgement code, the HTTP status, or the error, in one line
    seconds: float


@dataclass(frozen=True)
class Outcome:
    """How a delivery ended: delivered, refused (no retry helps) or given up after its attempts."""

    delivered: bool
    attempts: tuple[Attempt, ...]

    @property
    def detail(self) -> str:
        return self.attempts[-1].detail if self.attempts else ""


# --------------------------------------------------------------------------------------------- MLLP


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


def _read_framed(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(END):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_ANSWER:
            raise OSError("acknowledgement longer than 1 MiB")
    start = data.find(START)
    if start < 0 or not data.endswith(END):
        raise OSError("no framed acknowledgement (the receiver closed the connection)")
    return data[start + 1 : -len(END)]


def mllp_exchange(url: str, message: str, timeout_s: float) -> str:
    """Send one message to ``mllp://host:port`` and return the framed answer's text."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(frame(message))
        return _read_framed(sock).decode("utf-8", errors="replace")


def ack_code(answer: str, control_id: str) -> tuple[str, str]:
    """(MSA-1 acknowledgement code, MSA-3 text) of an ACK answering message ``control_id``."""
    from hl7apy.exceptions import HL7apyException
    from hl7apy.parser import parse_message

    try:
        ack = parse_message(answer.replace("\n", "\r").strip("\r"), find_groups=False)
        msa = ack.msa
        code, acked = msa.msa_1.to_er7(), msa.msa_2.to_er7()
        text = msa.msa_3.to_er7() if msa.msa_3 else ""
    except (HL7apyException, AttributeError, IndexError, ValueError) as exc:
        return "??", f"not an HL7 acknowledgement ({type(exc).__name__})"
    if acked != control_id:
        return "??", f"acknowledges message {acked}, not {control_id}"
    return code, text


def _send_mllp(endpoint: Endpoint, message: str, control_id: str) -> tuple[bool, bool, str]:
    try:
        answer = mllp_exchange(endpoint.url, message, endpoint.timeout_s)
    except OSError as exc:
        return False, True, f"no acknowledgement: {exc.strerror or exc}"
    code, text = ack_code(answer, control_id)
    detail = f"MSA {code}" + (f": {text}" if text else "")
    if code in ("AA", "CA"):
        return True, False, detail
    return False, code not in ("AR", "CR"), detail


# --------------------------------------------------------------------------------------------- FHIR


def _send_fhir(endpoint: Endpoint, bundle: dict) -> tuple[bool, bool, str]:
    body = json.dumps(bundle, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/fhir+json; charset=utf-8",
            "Accept": "application/fhir+json",
            **endpoint.headers,
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=endpoint.timeout_s) as resp:
            resp.read(MAX_ANSWER)
            return True, False, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        text = exc.read(2000).decode("utf-8", errors="replace").replace("\n", " ")[:200]
        retry = exc.code >= 500 or exc.code in (408, 429)
        return False, retry, f"HTTP {exc.code}: {text}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, True, f"no answer: {reason}"


# ----------------------------------------------------------------------------------------- attempts


def send(endpoint: Endpoint, payload: str | dict, *, control_id: str = "", number: int = 1) -> Attempt:
    """One attempt: an ER7 message over MLLP (``control_id`` = its MSH-10) or a FHIR bundle over HTTP."""
    began = time.monotonic()
    at = _dt.datetime.now(_dt.UTC)
    if endpoint.kind == "mllp":
        ok, retry, detail = _send_mllp(endpoint, str(payload), control_id)
    else:
        ok, retry, detail = _send_fhir(endpoint, payload if isinstance(payload, dict) else json.loads(payload))
    return Attempt(
        endpoint.name,
        number,
        at,
        ok,
        retry and not ok,
        detail.replace("\r", " ").replace("\n", " "),
        round(time.monotonic() - began, 3),
    )


def backoff(number: int, base_s: float = BACKOFF_S, cap_s: float = MAX_BACKOFF_S) -> float:
    """Seconds to wait after attempt ``number`` failed: base, 2 x base, 4 x base, ... up to ``cap_s``."""
    return min(cap_s, base_s * 2 ** (number - 1))


def deliver(
    endpoint: Endpoint,
    payload: str | dict,
    *,
    control_id: str = "",
    record: Callable[[Attempt], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    first: int = 1,
) -> Outcome:
    """Attempts ``first`` .. ``endpoint.attempts`` with backoff between them, until delivered or refused."""
    attempts = []
    for number in range(first, endpoint.attempts + 1):
        a = send(endpoint, payload, control_id=control_id, number=number)
        attempts.append(a)
        if record is not None:
            record(a)
        if a.delivered or not a.retry:
            break
        if number < endpoint.attempts:
            sleep(backoff(number, endpoint.backoff_s))
    return Outcome(bool(attempts) and attempts[-1].delivered, tuple(attempts))
