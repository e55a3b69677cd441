"""Process lifetime of ``oligolab serve``: web and analysis processes that die with the process that started
them (a ``kill -9`` of the service leaves nothing answering on its port), and a start that fails cleanly when
the port is taken."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
import time

#: the serving command's pid, for its web processes (set before they are started)
PARENT_ENV = "OLIGOLAB_SERVE_PARENT"
_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int, interval_s: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(interval_s)


def die_with_parent(*, kernel_signal: bool = True, interval_s: float = 0.5) -> None:
    """End this process when its parent dies: on Linux the kernel sends SIGKILL at once (PR_SET_PDEATHSIG; only
    for processes started by a thread that lives as long as the parent, as uvicorn's supervisor does), and a
    watchdog thread exits when the parent changes (covers a parent that died before this call, and pools whose
    processes are started from short-lived threads: ``kernel_signal=False``)."""
    parent = int(os.environ.get(PARENT_ENV) or os.getppid())
    if kernel_signal:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the watchdog alone
            pass
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent, interval_s), name="oligolab-parent-watch", daemon=True).start()


def analysis_process_start() -> None:
    """Initializer of analysis processes: they go when the web process that started them goes."""
    os.environ.pop(PARENT_ENV, None)
    die_with_parent(kernel_signal=False)


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (another server has it), or None when it is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
