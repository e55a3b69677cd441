"""Westgard rules and Levey-Jennings data (oligolab.lab.qc_trend) on a constructed control series whose
violations are known run by run, limits from a lot's first runs, control points from a real analysed run, and
the NTC contamination rate per week in the lab's time zone."""

from __future__ import annotations

import datetime as dt

import pytest

from oligolab.lab import qc_trend as q

UTC = dt.timezone.utc
START = dt.datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
N1 = q.SeriesKey("CDC", "pc", "N1", "LOT-A")
N2 = q.SeriesKey("CDC", "pc", "N2", "LOT-A")
EC = q.SeriesKey("CDC", "ec", "RP", "LOT-A")
LIMITS = {N1: q.Limits(25.0, 1.0), N2: q.Limits(26.0, 0.5), EC: q.Limits(23.0, 0.8)}

#: z-scores of the N1 positive control in runs r01..r26, built so that each rule fires where the comment says
Z_N1 = [0.5, -0.3, 2.5, 0.2, 3.4, -0.5, 2.3, 2.4, -1.2, -1.3, -1.5, -1.1, -0.5,
        0.3, 0.6, 0.2, 0.8, 0.4, 0.1, 0.5, 0.7, 0.3, 0.9, -0.2, 2.5, -2.2]
#   r03 1-2s | r05 1-3s | r07 1-2s | r08 1-2s + 2-2s | r12 4-1s (r09-r12 below -1 SD) | r23 10x (r14-r23 above
#   the mean) | r25 1-2s and, with N2 at -2.5 SD in the same run, R-4s | r26 1-2s and, with the extraction control
#   at -2.4 SD in the same run, 2-2s across controls
EXPECTED = {("1-2s", "r03"), ("1-3s", "r05"), ("1-2s", "r07"), ("1-2s", "r08"), ("2-2s", "r08"),
            ("4-1s", "r12"), ("10x", "r23"), ("1-2s", "r25"), ("R-4s", "r25"), ("1-2s", "r26"),
            ("2-2s", "r26")}


def _series() -> list[q.ControlPoint]:
    points = []
    for i, z in enumerate(Z_N1):
        run, at = f"r{i + 1:02d}", START + dt.timedelta(days=i)
        alt = 0.1 if i % 2 else -0.1                       # N2 and EC wander around their mean
        z_n2 = -2.5 if run == "r25" else alt
        z_ec = -2.4 if run == "r26" else -alt
        points += [q.ControlPoint(N1, run, at, 25.0 + z * 1.0),
                   q.ControlPoint(N2, run, at, 26.0 + z_n2 * 0.5),
                   q.ControlPoint(EC, run, at, 23.0 + z_ec * 0.8)]
    return points


def test_westgard_rules_fire_exactly_where_the_series_violates_them():
    flags = q.westgard(_series(), LIMITS)
    assert {(f.rule, f.run) for f in flags} == EXPECTED
    per_key = sorted((f.rule, f.run, f.keys) for f in flags)
    n1 = [(rule, run, (N1,)) for rule, run in EXPECTED if rule not in ("R-4s",) and (rule, run) != ("2-2s", "r26")]
    assert per_key == sorted(n1 + [("1-2s", "r25", (N2,)), ("R-4s", "r25", (N1, N2)),
                                   ("1-2s", "r26", (EC,)), ("2-2s", "r26", (N1, EC))])
    four = next(f for f in flags if f.rule == "4-1s")
    assert four.runs == ("r09", "r10", "r11", "r12")
    ten = next(f for f in flags if f.rule == "10x")
    assert ten.runs == tuple(f"r{i:02d}" for i in range(14, 24))


def test_run_status_and_rule_selection():
    flags = q.westgard(_series(), LIMITS)
    assert q.run_status(flags, "r03") == q.WARNING          # 1-2s alone is a warning
    assert q.run_status(flags, "r05") == q.REJECT
    assert q.run_status(flags, "r04") == "ok"
    only = q.westgard(_series(), LIMITS, rules=["10x"])
    assert {(f.rule, f.run) for f in only} == {("10x", "r23")}
    with pytest.raises(ValueError, match="unknown Westgard rules"):
        q.westgard(_series(), LIMITS, rules=["1-5s"])


def test_series_without_limits_are_charted_not_judged():
    points = _series()
    assert q.westgard(points, {}) == []
    chart = q.levey_jennings(points, N1, None)
    assert chart["lines"] == {} and len(chart["cq"]) == len(Z_N1) and chart["z"][0] is None


def test_limits_from_the_first_twenty_runs_of_a_lot_and_a_new_lot_starts_again():
    points = _series()
    limits = q.series_limits(points)
    first = [25.0 + z for z in Z_N1[:20]]
    import statistics

    assert limits[N1].mean == pytest.approx(statistics.fmean(first))
    assert limits[N1].sd == pytest.approx(statistics.stdev(first))
    assert limits[N1].n == 20
    new_lot = q.SeriesKey("CDC", "pc", "N1", "LOT-B")
    few = [q.ControlPoint(new_lot, f"b{i}", START + dt.timedelta(days=40 + i), 25.0) for i in range(5)]
    assert new_lot not in q.series_limits(points + few)     # 5 runs of LOT-B: no limits yet
    given = {new_lot: q.Limits(24.0, 0.5, source="lot certificate")}
    assert q.series_limits(few, given)[new_lot].source == "lot certificate"
    assert q.establish_limits([25.0] * 25) is None          # no spread, no limits


def test_levey_jennings_lines_and_flagged_points():
    points = _series()
    flags = q.westgard(points, LIMITS)
    chart = q.levey_jennings(points, N1, LIMITS[N1], flags)
    assert chart["lines"]["mean"] == 25.0 and chart["lines"]["+3sd"] == 28.0 and chart["lines"]["-2sd"] == 23.0
    assert chart["runs"][7] == "r08" and chart["rules"][7] == ["1-2s", "2-2s"]
    assert chart["rules"][24] == ["1-2s", "R-4s"]
    assert chart["z"][4] == pytest.approx(3.4)


def test_control_points_from_a_real_analysed_run():
    from serve_support import PLATE_MAP, RUN

    from oligolab.lab.analysis import analyze_file
    from oligolab.lab.rules import load_ruleset
    from oligolab.service.analysis import result_document

    rules = load_ruleset("cdc-2019-ncov")
    plate = analyze_file(RUN, plate_map=PLATE_MAP, rules=rules)[0]
    result, _ = result_document(plate)
    ic = q.internal_control_targets(rules.controls["ec"].expect)
    assert ic == ["RP"]
    pts = q.control_points(result, run="7", at=START, assay="CDC", lot="L1", ic_targets=ic)
    by = {(p.key.control, p.key.target): p.cq for p in pts}
    pc = next(c for c in result["controls"] if c["role"] == "pc")
    ec = next(c for c in result["controls"] if c["role"] == "ec")
    assert by[("pc", "N1")] == pytest.approx(pc["N1_cq"]) and by[("pc", "RP")] == pytest.approx(pc["RP_cq"])
    assert by[("ec", "RP")] == pytest.approx(ec["RP_cq"]) and ("ec", "N1") not in by   # HSC N1 not amplified
    import statistics

    rp = [s["RP_cq"] for s in result["samples"] if s["RP_cq"] is not None]
    assert by[("ic", "RP")] == pytest.approx(statistics.median(rp))
    ntc = q.ntc_counts(result, run="7", at=START)
    assert ntc.wells == 3 and ntc.amplified == sum(1 for w in result["wells"] if w["role"] == "ntc"
                                                   and w["amplified"])


def test_ntc_rate_per_week_in_the_labs_time_zone():
    sunday_night = dt.datetime(2026, 12, 6, 22, 30, tzinfo=UTC)      # Monday 01:30 in Moscow (UTC+3)
    runs = [q.NtcRun("a", dt.datetime(2026, 12, 1, 8, tzinfo=UTC), 3, 0),
            q.NtcRun("b", dt.datetime(2026, 12, 2, 8, tzinfo=UTC), 3, 1),
            q.NtcRun("c", sunday_night, 3, 2),
            q.NtcRun("d", dt.datetime(2026, 12, 8, 8, tzinfo=UTC), 3, 0)]
    utc = {w.week: w for w in q.ntc_weekly(runs)}
    assert utc["2026-W49"].wells == 9 and utc["2026-W49"].amplified == 3
    assert utc["2026-W49"].rate == pytest.approx(3 / 9) and utc["2026-W49"].runs_contaminated == 2
    moscow = {w.week: w for w in q.ntc_weekly(runs, "Europe/Moscow")}
    assert moscow["2026-W49"].amplified == 1 and moscow["2026-W50"].amplified == 2
    assert moscow["2026-W50"].runs == 2


def test_service_judges_a_batch_once_and_again_when_what_it_is_judged_on_changes(tmp_path):
    """The service's Westgard status of each batch (kept per process) equals the rules applied afresh to the
    lab's stored control points of the batches up to it; a limit saved by the lab or a new result version of an
    earlier batch changes the judgement at once (never a stale status)."""
    from serve_support import make_app
    from sqlalchemy import select

    from oligolab.service import qcview
    from oligolab.service.day_db import QcLimit, QcPoints
    from oligolab.service.db import Assay, Batch

    app = make_app(f"sqlite:///{tmp_path}/qc.db")
    runs = sorted({p.run for p in _series()})
    with app.state.factory() as db:
        assay = db.get(Assay, 1)
        ids = {}
        for i, run in enumerate(runs):
            b = Batch(lab_id=1, assay_id=1, name=run, run_filename=f"{run}.rdml", run_bytes=b"x", run_sha256=run,
                      status="signed", current_version=1, created_by="tech", created_at=START + dt.timedelta(days=i))
            db.add(b)
            db.flush()
            ids[run] = b.id
            db.add(QcPoints(batch_id=b.id, version=1, lab_id=1, assay_id=1, at=b.created_at, lot="LOT-A",
                            points=[[p.key.control, p.key.target, p.cq] for p in _series() if p.run == run]))
        for key, lim in LIMITS.items():
            db.add(QcLimit(lab_id=1, assay_id=1, control=key.control, target=key.target, lot=key.lot,
                           mean=lim.mean, sd=lim.sd))
        db.commit()

        def statuses():
            out = {}
            for run, bid in ids.items():
                status, flags = qcview.batch_flags(db, db.get(Batch, bid))
                out[run] = (status, sorted(f.rule for f in flags))
            return out

        def afresh(points, limits):
            renamed = [q.ControlPoint(q.SeriesKey(assay.name, p.key.control, p.key.target, p.key.lot), str(ids[p.run]),
                                      p.at, p.cq) for p in points]
            given = {q.SeriesKey(assay.name, k.control, k.target, k.lot): v for k, v in limits.items()}
            flags = q.westgard(renamed, given)
            return {run: (q.run_status(flags, str(bid)), sorted(f.rule for f in flags if f.run == str(bid)))
                    for run, bid in ids.items()}

        first = statuses()
        assert first == afresh(_series(), LIMITS)
        assert first["r05"] == ("reject", ["1-3s"]) and first["r03"] == ("warning", ["1-2s"])
        assert statuses() == first                                          # judged once, same answer

        row = db.scalar(select(QcLimit).where(QcLimit.control == "pc", QcLimit.target == "N1"))
        row.sd = 2.0                                                        # the lab widens N1's limits
        db.commit()
        wider = {**LIMITS, N1: q.Limits(25.0, 2.0)}
        assert statuses() == afresh(_series(), wider) != first

        b = db.get(Batch, ids["r04"])                                       # r04 corrected: N1 now +3.5 SD
        moved = [[c, t, 25.0 + 3.5 * 2.0 if (c, t) == ("pc", "N1") else cq] for c, t, cq in
                 db.get(QcPoints, (b.id, 1)).points]
        db.add(QcPoints(batch_id=b.id, version=2, lab_id=1, assay_id=1, at=b.created_at, lot="LOT-A", points=moved))
        b.current_version = 2
        db.commit()
        points = [p if not (p.run == "r04" and p.key == N1) else q.ControlPoint(N1, "r04", p.at, 32.0)
                  for p in _series()]
        assert statuses()["r04"] == afresh(points, wider)["r04"] == ("reject", ["1-3s"])
