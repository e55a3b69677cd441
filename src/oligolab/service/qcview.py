"""QC over time in the service: control Cq points of the lab's analysed batches (reagent lot from their
worklist), limits (the lab's own from the settings, else the lot's first runs), Westgard flags per batch,
Levey-Jennings charts (Plotly) and the NTC contamination rate per week in the lab's zone
(:mod:`oligolab.lab.qc_trend` does the arithmetic)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, undefer

from ..lab import qc_trend as qt
from . import i18n
from .analysis import batch_ruleset
from .day_db import QcLimit, QcPoints, Worklist
from .db import Assay, Batch, BatchVersion, User

_ = i18n.gettext

#: most recent analysed batches a QC view reads (about three weeks of a lab running 3-4 plates a day)
RECENT_BATCHES = 80


@dataclass
class QcData:
    points: list[qt.ControlPoint]
    limits: dict[qt.SeriesKey, qt.Limits]
    flags: list[qt.Flag]
    ntc: list[qt.NtcRun]


_IC_TARGETS: dict[str, list[str]] = {}


def _ic_targets(db: Session, batch: Batch) -> list[str]:
    """The internal-control targets of a batch's rule set (cached by the rule set's hash)."""
    key = batch.ruleset_sha256 or f"assay-{batch.assay_id}"
    if key not in _IC_TARGETS:
        ruleset = batch_ruleset(db, batch)
        ec = ruleset.controls.get("ec")
        _IC_TARGETS[key] = qt.internal_control_targets(ec.expect) if ec is not None else []
    return _IC_TARGETS[key]


def _points_row(db: Session, b: Batch, lot: str) -> QcPoints:
    """The QC points of a batch's current version, computed once from its stored result."""
    v = db.scalar(
        select(BatchVersion)
        .options(undefer(BatchVersion.result))
        .where(BatchVersion.batch_id == b.id, BatchVersion.version == b.current_version)
    )
    assert v is not None  # the batches charted have a current version
    pts = qt.control_points(v.result, run=str(b.id), at=b.created_at, assay="", lot=lot, ic_targets=_ic_targets(db, b))
    ntc = qt.ntc_counts(v.result, run=str(b.id), at=b.created_at)
    return QcPoints(
        batch_id=b.id,
        version=b.current_version,
        lab_id=b.lab_id,
        assay_id=b.assay_id,
        at=b.created_at,
        lot=lot,
        points=[[p.key.control, p.key.target, p.cq] for p in pts],
        ntc_wells=ntc.wells,
        ntc_amplified=ntc.amplified,
    )


def _cached_points(db: Session, batches: list[Batch]) -> dict[int, QcPoints]:
    """Batch id -> QC points of its current version; missing ones are computed and stored."""
    if not batches:
        return {}
    rows = {
        (r.batch_id, r.version): r
        for r in db.scalars(select(QcPoints).where(QcPoints.batch_id.in_([b.id for b in batches])))
    }
    missing = [b for b in batches if (b.id, b.current_version) not in rows]
    if missing:
        lots = dict(
            db.execute(
                select(Worklist.batch_id, Worklist.reagent_lot).where(Worklist.batch_id.in_([b.id for b in missing]))
            ).all()
        )
        made = [_points_row(db, b, lots.get(b.id, "")) for b in missing]
        try:
            db.add_all(made)
            db.commit()
        except IntegrityError:  # another request stored them first: theirs are the same
            db.rollback()
        rows.update({(r.batch_id, r.version): r for r in made})
    return {b.id: rows[(b.id, b.current_version)] for b in batches}


def qc_data(db: Session, lab_id: int, assay_id: int | None = None, *, upto_batch: int | None = None) -> QcData:
    """Control points, limits and Westgard flags of the lab's recent analysed batches (of one assay).

    The judgement of a window of batches is made once per process and kept under exactly what it is made of
    (each batch's stored QC points, the lab's assay names and its own limits), so a page view reads those small
    rows and judges again only when one of them changed (a new version, a limit saved)."""
    q = select(Batch).where(Batch.lab_id == lab_id, Batch.current_version > 0)
    if assay_id:
        q = q.where(Batch.assay_id == assay_id)
    if upto_batch:
        q = q.where(Batch.id <= upto_batch)
    batches = list(db.scalars(q.order_by(Batch.id.desc()).limit(RECENT_BATCHES)))[::-1]
    cached = _cached_points(db, batches)
    assays = {a.id: a.name for a in db.scalars(select(Assay).where(Assay.lab_id == lab_id))}
    given_rows = list(db.scalars(select(QcLimit).where(QcLimit.lab_id == lab_id).order_by(QcLimit.id)))
    key = (
        tuple(
            (
                b.id,
                b.assay_id,
                cached[b.id].at,
                cached[b.id].lot,
                cached[b.id].ntc_wells,
                cached[b.id].ntc_amplified,
                tuple(map(tuple, cached[b.id].points)),
            )
            for b in batches
        ),
        tuple(sorted(assays.items())),
        tuple((r.assay_id, r.control, r.target, r.lot, r.mean, r.sd, r.source) for r in given_rows),
    )
    with _JUDGED_LOCK:
        known = _JUDGED.get(key)
        if known is not None:
            _JUDGED.move_to_end(key)
            return known
    points: list[qt.ControlPoint] = []
    ntc: list[qt.NtcRun] = []
    for b in batches:
        row, assay = cached[b.id], assays.get(b.assay_id, "?")
        points += [
            qt.ControlPoint(qt.SeriesKey(assay, control, target, row.lot), str(b.id), row.at, float(cq))
            for control, target, cq in row.points
        ]
        ntc.append(qt.NtcRun(str(b.id), row.at, row.ntc_wells, row.ntc_amplified))
    given = {
        qt.SeriesKey(assays.get(r.assay_id, "?"), r.control, r.target, r.lot): qt.Limits(r.mean, r.sd, 0, r.source)
        for r in given_rows
    }
    limits = qt.series_limits(points, given)
    data = QcData(points, limits, qt.westgard(points, limits), ntc)
    with _JUDGED_LOCK:
        _JUDGED[key] = data
        while len(_JUDGED) > JUDGED_KEPT:
            _JUDGED.popitem(last=False)
    return data


#: Westgard judgements kept per process (a window of batches each: about 1 MB for 256 of 80 batches)
JUDGED_KEPT = 256
_JUDGED: OrderedDict[tuple, QcData] = OrderedDict()
_JUDGED_LOCK = threading.Lock()


def batch_flags(db: Session, batch: Batch) -> tuple[str, list[qt.Flag]]:
    """The Westgard status (ok, warning, reject) and flags of one batch, judged with the runs before it."""
    data = qc_data(db, batch.lab_id, batch.assay_id, upto_batch=batch.id)
    mine = [f for f in data.flags if f.run == str(batch.id)]
    return qt.run_status(mine, str(batch.id)), mine


def save_limit(db: Session, user: User, form: dict) -> QcLimit:
    from ..errors import InputError

    try:
        mean, sd = float(str(form.get("mean", "")).replace(",", ".")), float(str(form.get("sd", "")).replace(",", "."))
    except ValueError:
        raise InputError("control limits", _("mean and SD must be numbers (cycles)"), _("e.g. 27.5 and 0.8")) from None
    if not (0 < mean < 60 and 0 < sd < 10):
        raise InputError(
            "control limits",
            _("mean %(mean)s / SD %(sd)s cycles are not plausible", mean=mean, sd=sd),
            _("check the values"),
        )
    control = str(form.get("control", ""))
    if control not in qt.CONTROL_KINDS:
        raise InputError("control limits", _("unknown control '%(control)s'", control=control), _("use pc, ec or ic"))
    row = QcLimit(
        lab_id=user.lab_id,
        assay_id=int(form.get("assay_id") or 0),
        control=control,
        target=str(form.get("target", "")).strip()[:50],
        lot=str(form.get("lot", "")).strip()[:100],
        mean=mean,
        sd=sd,
        source=str(form.get("source", "")).strip()[:200],
    )
    db.add(row)
    db.flush()
    return row


# ---------------------------------------------------------------------------------------------- charts

#: control kinds as pages name them (translated where shown)
KIND_TEXT = {"pc": i18n.N_("positive control"), "ec": i18n.N_("extraction control"), "ic": i18n.N_("internal control")}


def series_label(key: qt.SeriesKey) -> str:
    """'CDC: positive control N1, lot L-2211' in the current language."""
    lot = _("lot %(lot)s", lot=key.lot) if key.lot else _("lot not recorded")
    return f"{key.assay}: {_(KIND_TEXT.get(key.control, key.control))} {key.target}, {lot}"


def flag_text(flag: qt.Flag) -> str:
    """The controls a flag names and their deviations, in the current language."""
    z = ", ".join(i18n.format_number(v) for v in flag.z)
    runs = _("runs %(runs)s", runs=", ".join(flag.runs)) if len(flag.runs) > 1 else ""
    return "; ".join(series_label(k) for k in flag.keys) + f": z = {z} SD" + (f" ({runs})" if runs else "")


def rule_text(rule: str) -> str:
    """What a Westgard rule means, in the current language."""
    return _(RULE_TEXT[rule])


#: the Westgard rules explained (translated where shown)
RULE_TEXT = {
    "1-2s": i18n.N_("one control beyond 2 SD (warning: inspect the run)"),
    "1-3s": i18n.N_("one control beyond 3 SD (random error)"),
    "2-2s": i18n.N_("two controls beyond 2 SD on the same side (systematic error)"),
    "R-4s": i18n.N_("one control beyond +2 SD and another beyond -2 SD in the same run (random error)"),
    "4-1s": i18n.N_("four consecutive controls beyond 1 SD on the same side (systematic error)"),
    "10x": i18n.N_("ten consecutive controls on the same side of the mean (shift)"),
}

_RULE_COLOURS = {"ok": "#1f6feb", qt.WARNING: "#bf8700", qt.REJECT: "#cf222e"}


def lj_chart(data: QcData, key: qt.SeriesKey, zone: str) -> dict:
    """A Levey-Jennings chart of one series: Cq per run in time order, mean and 1/2/3 SD lines, points coloured
    by the worst Westgard rule they are flagged by (hover names the rules and the batch); the Plotly spec the
    page's script draws."""
    chart = qt.levey_jennings(data.points, key, data.limits.get(key), data.flags)
    x = [f"№ {run} · {i18n.format_datetime(t, zone, 'dd.MM HH:mm')}" for run, t in zip(chart["runs"], chart["at"])]
    colours = [
        _RULE_COLOURS[qt.REJECT if any(qt.RULES[r] == qt.REJECT for r in rules) else qt.WARNING if rules else "ok"]
        for rules in chart["rules"]
    ]
    batch_word = _("batch")
    hover = [
        f"{batch_word} {run}: Cq {i18n.format_number(cq)}" + (f" — {', '.join(rules)}" if rules else "")
        for run, cq, rules in zip(chart["runs"], chart["cq"], chart["rules"])
    ]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": x,
            "y": chart["cq"],
            "text": hover,
            "hoverinfo": "text",
            "name": "Cq",
            "marker": {"size": 9, "color": colours},
            "line": {"color": "#8c959f", "width": 1},
        }
    ]
    shapes = []
    for name, y in chart["lines"].items():
        dash = "solid" if name == "mean" else {"1": "dot", "2": "dash", "3": "solid"}[name[1]]
        colour = "#1a7f37" if name == "mean" else {"1": "#8c959f", "2": "#bf8700", "3": "#cf222e"}[name[1]]
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": y,
                "y1": y,
                "line": {"dash": dash, "width": 1, "color": colour},
            }
        )
    lim = chart["limits"]
    limits = (
        _("mean %(mean)s, SD %(sd)s", mean=i18n.format_number(lim.mean), sd=i18n.format_number(lim.sd))
        if lim
        else _("limits not established yet")
    )
    title = f"{series_label(key)} — {limits}"
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}},
        "shapes": shapes,
        "margin": {"t": 40, "b": 60},
        "xaxis": {"title": {"text": _("run")}, "type": "category"},
        "yaxis": {"title": {"text": "Cq"}},
        "showlegend": False,
    }
    if lim is not None and chart["cq"]:  # the 3 SD lines always in view
        layout["yaxis"]["range"] = [
            min(lim.mean - 3.5 * lim.sd, min(chart["cq"]) - 0.5),
            max(lim.mean + 3.5 * lim.sd, max(chart["cq"]) + 0.5),
        ]
    layout["height"] = 320
    return {"data": traces, "layout": layout}
