"""What the batch and sample pages show, built from a stored version: the plate grid and the curve chart."""

from __future__ import annotations

from ..lab.report import CALL_CLASS


def plate_grid(result: dict) -> dict:
    """Rows x columns of the plate with each used well's sample, role and the sample's final call."""
    calls = {str(s["sample"]): s.get("final_call") or s.get("call") or "" for s in result["samples"]}
    wells: dict[str, dict] = {}
    for w in result["wells"]:
        if w["role"] == "empty":  # read by the instrument but not used by the plate map
            continue
        cell = wells.setdefault(
            w["well"], {"sample": str(w["sample"]), "role": w["role"], "targets": [], "review": False}
        )
        cell["targets"].append(w["target"])
        cell["review"] = cell["review"] or bool(w.get("review"))
    rows_n = result["plate"]["rows"] or (16 if len(wells) > 96 else 8)
    cols_n = result["plate"]["columns"] or (24 if len(wells) > 96 else 12)
    grid = []
    for r in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:rows_n]:
        row = []
        for c in range(1, cols_n + 1):
            found = wells.get(f"{r}{c}")
            if found:
                call = calls.get(found["sample"], "") if found["role"] == "sample" else found["role"]
                row.append(
                    {
                        "well": f"{r}{c}",
                        **found,
                        "call": call,
                        "cls": CALL_CLASS.get(call, "na") if found["role"] == "sample" else "ctl",
                    }
                )
            else:
                row.append({"well": f"{r}{c}", "sample": "", "role": "empty", "call": "", "cls": "empty"})
        grid.append({"row": r, "cells": row})
    return {"columns": list(range(1, cols_n + 1)), "rows": grid}


def curve_chart(result: dict, curves: dict, wells: list[dict]) -> dict:
    """Plotly data and layout: baseline-corrected curves of a sample's wells (log scale) with the thresholds
    (drawn by /static/app.js: no inline script)."""
    cycles = result["cycles"]
    data, shapes = [], []
    for w in wells:
        y = curves.get(f"{w['well']}/{w['target']}")
        if y is None:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": cycles,
                "y": [v if v is not None and v > 0 else None for v in y],
                "name": f"{w['target']} ({w['well']}) Cq "
                + (f"{w['cq_threshold']:.2f}" if w.get("cq_threshold") is not None else "-"),
                "marker": {"size": 4},
            }
        )
    for target, thr in (result.get("thresholds") or {}).items():
        if thr and any(w["target"] == target for w in wells):
            shapes.append(
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": thr,
                    "y1": thr,
                    "line": {"dash": "dot", "width": 1},
                }
            )
    layout = {
        "xaxis": {"title": {"text": "cycle"}},
        "yaxis": {"title": {"text": "baseline-corrected fluorescence"}, "type": "log"},
        "shapes": shapes,
        "margin": {"t": 20},
        "legend": {"orientation": "h", "y": -0.25},
        "height": 420,
    }
    return {"data": data, "layout": layout}
