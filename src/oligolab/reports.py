"""The report toolkit shared by every capability: atomic file writes, tables (TSV, CSV, Parquet), JSON, and
self-contained HTML pages with Plotly figures.

Every output goes through :func:`atomic_path`, so an interrupted run leaves either the previous file or the
complete new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import json
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

try:  # pandas is a hard dependency; imported lazily in helpers for start-up speed
    import pandas as pd
except ImportError:  # pragma: no cover
    pd = None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


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


def append_line(path: str | Path, make_line: "Callable[[str], str]") -> str:
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


def write_table(frame: "pd.DataFrame", path: str | Path) -> Path:
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
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


_PAGE_CSS = """
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
.pill.ok{background:#dafbe1} .pill.warn{background:#fff8c5} .pill.bad{background:#ffebe9} .pill.na{background:#eaeef2;color:#57606a}
.kpis{display:flex;gap:12px;flex-wrap:wrap} .kpi{border:1px solid #dde2ea;border-radius:8px;padding:10px 14px;min-width:150px;background:#fff}
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
    import hashlib

    if height is not None:
        fig.update_layout(height=height)
    div_id = "fig-" + hashlib.sha1(fig.to_json().encode()).hexdigest()[:12]
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def plotly_div(data: list[dict], layout: dict, *, height: int | None = None, nan_free: bool = False) -> str:
    """A Plotly chart as an HTML ``div`` from plain trace/layout dicts (no figure objects, no validation).

    For pages with many or large charts, where building ``plotly.graph_objects`` figures would dominate the
    run time. NaN values become gaps (JSON null); a caller whose data hold no float NaN (gaps already None)
    may pass ``nan_free=True`` to skip that pass. The page must carry plotly.js (``html_page`` does).
    """
    import uuid

    layout = dict(layout)
    if height is not None:
        layout["height"] = height
    div_id = f"plot-{uuid.uuid4().hex[:12]}"
    payload = {"data": data, "layout": layout} if nan_free else {"data": _clean_nan(data), "layout": _clean_nan(layout)}
    spec = json.dumps(payload, default=_json_default, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    return (f'<div id="{div_id}" class="plotly-graph-div" style="height:{layout.get("height", 400)}px;width:100%">'
            f'</div><script>(function(){{var s={spec};Plotly.newPlot("{div_id}",s.data,s.layout,'
            f'{{"displaylogo":false,"responsive":true}});}})();</script>')


def table_html(frame: "pd.DataFrame", *, max_rows: int = 200, classes: dict[str, Any] | None = None,
               formats: dict[str, str] | None = None) -> str:
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


def html_page(title: str, subtitle: str, sections: Iterable[tuple[str, str]], *, footer: str = "",
              include_plotly: bool = True) -> str:
    """A complete, self-contained HTML page: ``sections`` is a sequence of (heading, inner HTML)."""
    body = "".join(
        f"<section><h2>{html_escape(head)}</h2>{inner}</section>" if head else f"<section>{inner}</section>"
        for head, inner in sections
    )
    script = f"<script>{_plotly_js()}</script>" if include_plotly else ""
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{html_escape(title)}</title>"
        f"<style>{_PAGE_CSS}</style>{script}</head><body>"
        f"<header><h1>{html_escape(title)}</h1><p>{html_escape(subtitle)}</p></header>"
        f"<main>{body}</main><footer>{footer}</footer></body></html>\n"
    )
