"""Plate maps: which sample, target, dye and role each well holds, from a CSV/TSV/XLSX file.

Columns (case-insensitive; aliases in brackets): ``well`` (well position), ``sample`` (sample name),
``role`` (content, task, type: sample, ntc, pc, ec, std, empty and their synonyms), ``target`` (target name)
and ``dye`` (fluor, reporter). A Bio-Rad CFX "Quantification Cq Results" export and the QuantStudio
"Sample Setup" columns are read as plate maps as they are.

With a plate map every curve of the run must find its well in the map (mark unused wells ``empty``), and every
used well of the map must have a curve: a missing or extra well is an error naming the well, never a silent
guess. In wells with several curves (multiplex), map rows are matched to curves by dye, then by the target
name of the export.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .formats import common
from .run import Run, make_run, normalize_role, normalize_well

_CONTENT = {
    "unkn": "sample",
    "neg ctrl": "ntc",
    "pos ctrl": "pc",
    "ntc": "ntc",
    "std": "std",
    "unknown": "sample",
    "standard": "std",
    "nrt": "ntc",
}


def _role_word(value: str) -> str:
    text = value.strip().lower()
    text = text.split("-")[0].strip() if text.startswith(("unkn-", "std-", "unkn ", "std ")) else text
    return _CONTENT.get(text, text)


def read_plate_map(path: str | Path) -> pd.DataFrame:
    """The plate map as a DataFrame with columns well, sample, role, target, dye (strings, '' if absent)."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "plate map not found", "check the --plate-map path")
    frame = common.frame_from_text(common.table_text(path), path)
    well_c = common.col(frame, "well", "well position", "position")
    if well_c is None:
        raise InputError(path, "the plate map has no 'well' column", "columns: well, sample, role, target, dye", line=1)
    cols = {
        "sample": common.col(frame, "sample", "sample name", "sample id"),
        "role": common.col(frame, "role", "content", "task", "type", "sample type"),
        "target": common.col(frame, "target", "target name", "assay"),
        "dye": common.col(frame, "dye", "fluor", "reporter", "channel"),
    }
    out = pd.DataFrame({"well": [normalize_well(w) for w in frame[well_c]]})
    for key, col in cols.items():
        out[key] = frame[col].fillna("").astype(str).str.strip() if col else ""
    out["line"] = np.arange(2, len(out) + 2)
    out = out[out["well"] != ""].reset_index(drop=True)
    roles = []
    for well, role, sample, line in zip(out["well"], out["role"], out["sample"], out["line"]):
        word = _role_word(role) if role else ("sample" if sample else "empty")
        try:
            roles.append(normalize_role(word, path=path, well=well))
        except InputError as exc:
            raise InputError(path, exc.problem, exc.fix, line=int(line), record=well) from None
    out["role"] = roles
    for _, r in out.iterrows():
        if r["role"] != "empty" and not r["sample"]:
            raise InputError(
                path,
                "a used well has no sample name",
                "fill the sample column or set role empty",
                line=int(r["line"]),
                record=r["well"],
            )
    return out


def apply_plate_map(run: Run, plate_map: pd.DataFrame, path: str | Path = "plate map") -> Run:
    """A copy of ``run`` whose layout (sample, target, dye, role) comes from ``plate_map``."""
    layout = run.layout.copy()
    by_well = {w: g for w, g in plate_map.groupby("well", sort=False)}
    used_rows: set[int] = set()
    curves_per_well = layout.groupby("well")["well"].transform("size")
    for i, cur in layout.iterrows():
        rows = by_well.get(cur["well"])
        if rows is None:
            raise InputError(
                path,
                "the run has a curve in this well but the plate map does not list it",
                "add the well to the plate map (role empty to skip it)",
                record=cur["well"],
            )
        pick = _match(rows, cur, int(curves_per_well.iat[i]))
        if pick is None:
            raise InputError(
                path,
                f"cannot tell which plate-map row belongs to the curve (dye '{cur['dye']}', target '{cur['target']}')",
                "give the dye (or the export's target name) for each multiplex row",
                record=cur["well"],
            )
        used_rows.add(int(pick.name))
        layout.at[i, "sample"] = pick["sample"]
        layout.at[i, "role"] = pick["role"]
        if pick["target"]:
            layout.at[i, "target"] = pick["target"]
        if pick["dye"]:
            layout.at[i, "dye"] = pick["dye"]
    for idx, r in plate_map.iterrows():
        if r["role"] != "empty" and idx not in used_rows and r["well"] not in set(layout["well"]):
            raise InputError(
                path,
                "the plate map lists this well but the run has no curve there",
                "check the well positions or the run file",
                line=int(r["line"]),
                record=r["well"],
            )
    fresh = make_run(
        run.name,
        run.source,
        run.fluor,
        run.cycles,
        layout,
        instrument=run.instrument,
        fmt=run.fmt,
        plate_rows=run.plate_rows,
        plate_columns=run.plate_columns,
        meta=dict(run.meta),
    )
    fresh.meta["plate_map"] = str(path)
    return fresh


def _match(rows: pd.DataFrame, cur: pd.Series, n_curves_in_well: int) -> pd.Series | None:
    if len(rows) == 1 and (n_curves_in_well == 1 or not rows.iloc[0]["target"]):
        return rows.iloc[0]
    if cur["dye"]:
        hit = rows[rows["dye"].str.lower() == str(cur["dye"]).lower()]
        if len(hit) == 1:
            return hit.iloc[0]
    if cur["target"]:
        hit = rows[rows["target"].str.lower() == str(cur["target"]).lower()]
        if len(hit) == 1:
            return hit.iloc[0]
    return None


def default_layout(run: Run) -> Run:
    """A run without a layout analysed curve by curve: every curve with readings is a sample named by its well,
    its target the export's target or dye (noted on the run, so the report says a plate map is missing)."""
    lay = run.layout.copy()
    has = np.isfinite(run.fluor).any(axis=1)
    lay["role"] = np.where(has, "sample", "empty")
    lay["sample"] = np.where(lay["sample"].astype(str).str.strip() != "", lay["sample"], lay["well"])
    target = lay["target"].astype(str).str.strip()
    lay["target"] = np.where(
        target != "", target, np.where(lay["dye"].astype(str).str.strip() != "", lay["dye"], "signal")
    )
    meta = dict(
        run.meta,
        layout_note="no plate layout: each curve is reported as a sample named by its well; "
        "give --plate-map for sample names, targets and controls",
    )
    return make_run(
        run.name,
        run.source,
        run.fluor,
        run.cycles,
        lay,
        instrument=run.instrument,
        fmt=run.fmt,
        plate_rows=run.plate_rows,
        plate_columns=run.plate_columns,
        meta=meta,
    )
