"""The report toolkit shared by every capability: atomic file writes, transactional output folders, tables
(TSV, CSV, Parquet), JSON, and self-contained HTML pages with Plotly figures.

Every file goes through :func:`atomic_path` and every result folder through :func:`output_folder`, so an
interrupted run leaves either the previous complete result or the new complete one, never a mixture. Files and
folders get the modes the user's umask allows (a lab group can read what a colleague wrote).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as _dt
import errno
import hashlib
import html
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

try:  # pandas is a hard dependency; imported lazily in helpers for start-up speed
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None

_UMASK_LOCK = threading.Lock()
#: the file every result folder carries: the files it holds and their SHA-256 (written last)
MANIFEST = "manifest.json"


def current_umask() -> int:
    """The process umask (read without changing it for longer than two system calls)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def apply_umask(path: str | Path, *, folder: bool = False) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would have given it (tempfile makes 0600/0700)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~current_umask())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str, pattern: re.Pattern[str]) -> bool:
    """True for a temporary name of ours whose writing process is gone."""
    m = pattern.fullmatch(name)
    return m is not None and int(m.group("pid")) != os.getpid() and not _pid_alive(int(m.group("pid")))


def _remove(path: Path) -> None:
    """Remove a file or folder of ours; a failure to tidy up never hides the error that caused it."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _part_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f".{name}.") + r"(?P<pid>\d+)\.[^.]+\.part")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. Temporary files left by a
    killed writer (its process is gone) are removed on the next write of the same file. Operating-system
    failures (disk full, permission denied) become :class:`InputError` naming the path.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pattern = _part_pattern(path.name)
        for sibling in path.parent.glob(f".{path.name}.*.part"):
            if _stale(sibling.name, pattern):
                _remove(sibling)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        apply_umask(tmp_path)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        if tmp_path is not None:
            _remove(tmp_path)
        raise InputError.from_os_error(exc, exc.filename or path) from exc
    except BaseException:
        if tmp_path is not None:
            _remove(tmp_path)
        raise


# ------------------------------------------------------------------------------------ output folders


def _folder_pattern(name: str) -> re.Pattern[str]:
    return re.compile(re.escape(f".{name}.") + r"(?:tmp|old)-(?P<pid>\d+)-[0-9a-f]+")


@lru_cache(maxsize=1)
def _renameat2() -> Callable[..., int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    fn = _renameat2()
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover_output_folder(target: str | Path) -> None:
    """Tidy what a killed run left beside ``target``: remove its temporary folders and, if a kill fell between
    the two renames of a swap on a file system without atomic exchange, put the previous result back."""
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return
    pattern = _folder_pattern(target.name)
    olds = []
    for entry in parent.glob(f".{target.name}.*-*-*"):
        if not _stale(entry.name, pattern):
            continue
        if ".old-" in entry.name:
            olds.append(entry)
        else:
            _remove(entry)
    for old in sorted(olds):
        if not target.exists():
            os.rename(old, target)
        else:
            _remove(old)


def replaceable(target: Path, new_names: set[str]) -> bool:
    """An existing folder may be replaced when it is one of our results (it has a manifest) or holds only
    files the new result writes (a result of a version before manifests)."""
    if (target / MANIFEST).is_file():
        return True
    names = {p.name for p in target.iterdir() if not p.name.endswith(".part")}
    return names <= new_names


def _write_manifest(folder: Path) -> None:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        files[path.relative_to(folder).as_posix()] = digest.hexdigest()
    from . import __version__

    write_text(folder / MANIFEST, to_json({"oligolab": __version__, "files": files}))


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` onto ``target`` as one step where the file system allows."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        _remove(tmp)  # now holds the previous result
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(target, old)  # a kill here is undone by recover_output_folder
    os.rename(tmp, target)
    _remove(old)


@contextlib.contextmanager
def output_folder(path: str | Path) -> Iterator[Path]:
    """Write a whole result folder as one transaction.

    Yields an empty temporary folder beside ``path``; when the block finishes, a ``manifest.json`` (every file
    and its SHA-256) is written and the folder replaces ``path`` in one step. An exception or a kill at any
    moment leaves the previous complete result (or nothing) at ``path``; leftovers of a killed run are removed
    on the next start. A ``path`` that is a file, or a folder holding files that oligolab did not write, is
    refused (nothing of the user's is ever deleted). OS failures become one-line :class:`InputError`.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(target, "is a file, not a folder", "give the output option a folder path")
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        recover_output_folder(target)
        fresh = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        fresh.mkdir()
        tmp = fresh
        apply_umask(tmp, folder=True)
        yield tmp
        new_names = {p.name for p in tmp.iterdir()} | {MANIFEST}
        if target.is_dir() and not replaceable(target, new_names):
            raise InputError(
                target,
                "the folder holds files oligolab did not write, so it is not replaced",
                "choose a new or empty output folder",
            )
        _write_manifest(tmp)
        _fsync_tree(tmp)
        _swap_in(tmp, target)
        _fsync_dir(target.parent)
        tmp = None
    except OSError as exc:
        raise InputError.from_os_error(exc, exc.filename or target) from exc
    finally:
        if tmp is not None:
            _remove(tmp)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def append_line(path: str | Path, make_line: Callable[[str], str]) -> str:
    """Append one line to an append-only file under an exclusive lock, fsynced; returns the line written.

    ``make_line`` receives the file's current content (to chain or number entries) and returns the new line
    (without newline). Concurrent writers are serialised by the lock; nothing already written is rewritten.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.seek(0)
            line = make_line(fh.read())
            if "\n" in line:
                raise ValueError("append_line writes exactly one line")
            fh.seek(0, os.SEEK_END)
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return line


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        value = float(obj)
        return None if math.isnan(value) else value
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (_dt.date, _dt.datetime)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean_nan(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_nan(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, NaN written as null)."""
    return json.dumps(_clean_nan(obj), indent=2, sort_keys=True, default=_json_default, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as deterministic, indented JSON atomically."""
    return write_text(path, to_json(obj))


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame by the file's suffix: ``.tsv``, ``.csv`` or ``.parquet``; atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False, compression="zstd")
        elif suffix in (".tsv", ".txt"):
            frame.to_csv(tmp, sep="\t", index=False, lineterminator="\n", na_rep="")
        elif suffix == ".csv":
            frame.to_csv(tmp, index=False, lineterminator="\n", na_rep="")
        else:
            raise ValueError(f"unknown table format for {path}")
    return path


# ---------------------------------------------------------------------------------------------- HTML pages


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The Plotly library's JavaScript, inlined by reports (offline) and served by the web service."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


#: the style sheet of every HTML page (reports and the web service's pages)
PAGE_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#17324d;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;opacity:.85;font-size:14px}
main{padding:16px 32px;max-width:1400px}
section{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{font-size:18px;margin:0 0 8px} h3{font-size:15px;margin:12px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37;font-weight:600} .warn{color:#9a6700;font-weight:600} .bad{color:#cf222e;font-weight:600}
.muted{color:#57606a} .pill{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.pill.ok{background:#dafbe1} .pill.warn{background:#fff8c5} \
.pill.bad{background:#ffebe9} .pill.na{background:#eaeef2;color:#57606a}
.kpis{display:flex;gap:12px;flex-wrap:wrap} \
.kpi{border:1px solid #dde2ea;border-radius:8px;padding:10px 14px;min-width:150px;background:#fff}
.kpi b{display:block;font-size:22px} .explain{font-size:13px;color:#3d4753;max-width:950px}
footer{padding:16px 32px;font-size:12px;color:#57606a}
@media print{header{background:#fff;color:#000;border-bottom:2px solid #000} section{break-inside:avoid;border:none}}
"""


def html_escape(value: Any) -> str:
    """Escape a value for HTML text."""
    return html.escape("" if value is None else str(value))


def figure_div(fig: Any, *, height: int | None = None) -> str:
    """A Plotly figure as an HTML ``div`` (the page carries plotly.js once). The div id is derived from the
    figure's content, so the same figure always renders to the same bytes."""
    if height is not None:
        fig.update_layout(height=height)
    div_id = "fig-" + hashlib.sha1(fig.to_json().encode()).hexdigest()[:12]
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
    )


def plotly_div(data: list[dict], layout: dict, *, height: int | None = None, nan_free: bool = False) -> str:
    """A Plotly chart as an HTML ``div`` from plain trace/layout dicts (no figure objects, no validation).

    For pages with many or large charts, where building ``plotly.graph_objects`` figures would dominate the
    run time. NaN values become gaps (JSON null); a caller whose data hold no float NaN (gaps already None)
    may pass ``nan_free=True`` to skip that pass. The page must carry plotly.js (``html_page`` does).
    """
    layout = dict(layout)
    if height is not None:
        layout["height"] = height
    payload = {"data": data, "layout": layout} if nan_free else {"data": _clean_nan(data), "layout": _clean_nan(layout)}
    spec = json.dumps(payload, default=_json_default, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    # the id comes from the chart's content, so the same chart always renders to the same bytes
    div_id = "plot-" + hashlib.sha1(spec.encode()).hexdigest()[:12]
    return (
        f'<div id="{div_id}" class="plotly-graph-div" style="height:{layout.get("height", 400)}px;width:100%">'
        f'</div><script>(function(){{var s={spec};Plotly.newPlot("{div_id}",s.data,s.layout,'
        f'{{"displaylogo":false,"responsive":true}});}})();</script>'
    )


def table_html(
    frame: pd.DataFrame,
    *,
    max_rows: int = 200,
    classes: dict[str, Any] | None = None,
    formats: dict[str, str] | None = None,
) -> str:
    """A DataFrame as a plain HTML table; ``classes`` maps a column to a function value -> CSS class."""
    classes = classes or {}
    formats = formats or {}
    head = "".join(f"<th>{html_escape(c)}</th>" for c in frame.columns)
    rows = []
    for record in frame.head(max_rows).itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, record):
            cls = classes[col](value) if col in classes else ""
            if isinstance(value, (float, np.floating)) and not (isinstance(value, float) and math.isnan(value)):
                text = format(value, formats.get(col, ".2f"))
                cls = (cls + " num").strip()
            elif isinstance(value, (int, np.integer)):
                text = str(value)
                cls = (cls + " num").strip()
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                text = ""
            else:
                text = html_escape(value)
            cells.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if len(frame) > max_rows:
        more = f'<p class="muted">{len(frame) - max_rows} more rows in the data files.</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def html_page(
    title: str, subtitle: str, sections: Iterable[tuple[str, str]], *, footer: str = "", include_plotly: bool = True
) -> str:
    """A complete, self-contained HTML page: ``sections`` is a sequence of (heading, inner HTML)."""
    body = "".join(
        f"<section><h2>{html_escape(head)}</h2>{inner}</section>" if head else f"<section>{inner}</section>"
        for head, inner in sections
    )
    script = f"<script>{plotly_js()}</script>" if include_plotly else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{html_escape(title)}</title>'
        f"<style>{PAGE_CSS}</style>{script}</head><body>"
        f"<header><h1>{html_escape(title)}</h1><p>{html_escape(subtitle)}</p></header>"
        f"<main>{body}</main><footer>{footer}</footer></body></html>\n"
    )
