"""Quality control over time: Levey-Jennings series of control Cq values, Westgard multirules, and the NTC
contamination rate per week.

A *series* is one control measurement followed across runs: (assay, control kind, target, reagent lot). The
control kinds are ``pc`` (the positive-control wells), ``ec`` (the extraction / human specimen control wells)
and ``ic`` (the internal control: the median Cq, over the run's specimens, of each target the extraction
control must find, RNase P for the CDC panel). A new reagent lot starts a new series with its own limits.

*Limits* are a series' mean and SD: given by the lab (its validation, the lot certificate) or established
from the lot's first :data:`BASELINE_RUNS` runs (CLSI C24-Ed4 asks for at least 20 measurements on 20 days).
Until then a series is charted without rules.

*Westgard rules* (Westgard JO, Barry PL, Hunt MR, Groth T. Clin Chem 1981;27:493-501; westgard.com "Westgard
Rules"), on z = (Cq - mean) / SD:

- ``1-2s`` one value beyond 2 SD: a warning, the run is inspected, not rejected;
- ``1-3s`` one value beyond 3 SD (random error): reject;
- ``2-2s`` two consecutive values of a series, or two series of one run, beyond 2 SD on the same side
  (systematic error): reject;
- ``R-4s`` within one run, one control beyond +2 SD and another beyond -2 SD (random error): reject;
- ``4-1s`` four consecutive values of a series beyond 1 SD on the same side (systematic error): reject;
- ``10x`` ten consecutive values of a series on the same side of the mean (systematic shift): reject.

Everything here is a pure function of the points it is given; the service stores the points and draws the
charts.
"""

from __future__ import annotations

import datetime as _dt
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

#: runs of a reagent lot that establish its limits when the lab gives none (CLSI C24: at least 20)
BASELINE_RUNS = 20
WARNING, REJECT = "warning", "reject"
#: every rule, in the order a report lists them, with its severity
RULES: dict[str, str] = {"1-2s": WARNING, "1-3s": REJECT, "2-2s": REJECT, "R-4s": REJECT, "4-1s": REJECT, "10x": REJECT}
CONTROL_KINDS = {"pc": "positive control", "ec": "extraction control", "ic": "internal control"}


@dataclass(frozen=True, order=True)
class SeriesKey:
    """Which control a series follows."""

    assay: str
    control: str  #: pc | ec | ic
    target: str
    lot: str = ""

    def label(self) -> str:
        lot = f", lot {self.lot}" if self.lot else ", lot not recorded"
        return f"{self.assay}: {CONTROL_KINDS.get(self.control, self.control)} {self.target}{lot}"


@dataclass(frozen=True)
class ControlPoint:
    """One control Cq of one run."""

    key: SeriesKey
    run: str  #: the run's identifier (a batch id in the service)
    at: _dt.datetime  #: when the run was made (aware, UTC)
    cq: float  #: cycles


@dataclass(frozen=True)
class Limits:
    """A series' mean and standard deviation (cycles), and where they come from."""

    mean: float
    sd: float
    n: int = 0
    source: str = ""

    def z(self, cq: float) -> float:
        return (cq - self.mean) / self.sd


@dataclass(frozen=True)
class Flag:
    """One Westgard rule that fired: on which run, for which series (several for the within-run rules)."""

    rule: str
    run: str
    keys: tuple[SeriesKey, ...]
    runs: tuple[str, ...]  #: the runs whose values make the violation, oldest first
    message: str
    z: tuple[float, ...] = ()  #: the z-scores that break the rule (SD from the mean)

    @property
    def severity(self) -> str:
        return RULES[self.rule]


def establish_limits(values: Sequence[float], *, runs: int = BASELINE_RUNS, source: str = "") -> Limits | None:
    """Limits from the first ``runs`` values of a series (None while it has fewer, or no spread)."""
    first = [v for v in values if math.isfinite(v)][:runs]
    if len(first) < max(runs, 2):
        return None
    sd = statistics.stdev(first)
    if sd <= 0:
        return None
    return Limits(statistics.fmean(first), sd, len(first), source or f"first {len(first)} runs")


def _series(points: Iterable[ControlPoint]) -> dict[SeriesKey, list[ControlPoint]]:
    out: dict[SeriesKey, list[ControlPoint]] = {}
    for p in sorted(points, key=lambda p: (p.at, p.run)):
        if math.isfinite(p.cq):
            out.setdefault(p.key, []).append(p)
    return out


def series_limits(
    points: Iterable[ControlPoint], given: Mapping[SeriesKey, Limits] | None = None, *, runs: int = BASELINE_RUNS
) -> dict[SeriesKey, Limits]:
    """Each series' limits: the lab's own (``given``) or established from the lot's first ``runs`` runs."""
    given = dict(given or {})
    out = {}
    for key, pts in _series(points).items():
        lim = given.get(key) or establish_limits([p.cq for p in pts], runs=runs)
        if lim is not None:
            out[key] = lim
    return out


def _run_of(window: Sequence[ControlPoint]) -> tuple[str, tuple[str, ...]]:
    return window[-1].run, tuple(p.run for p in window)


def _same_side_run(z: Sequence[float], length: int, beyond: float) -> bool:
    """The last ``length`` z-scores all beyond ``beyond`` on one side (strictly)."""
    if len(z) < length:
        return False
    tail = z[-length:]
    return all(v > beyond for v in tail) or all(v < -beyond for v in tail)


def _series_flags(key: SeriesKey, pts: Sequence[ControlPoint], lim: Limits) -> list[Flag]:
    """The rules that look along one series (1-2s, 1-3s, 2-2s, 4-1s, 10x), at each of its runs."""
    flags: list[Flag] = []
    z: list[float] = []
    for i, p in enumerate(pts):
        z.append(lim.z(p.cq))
        here = f"{key.label()}: Cq {p.cq:.2f} (mean {lim.mean:.2f}, SD {lim.sd:.2f}, z {z[-1]:+.2f})"
        if abs(z[-1]) > 3:
            flags.append(Flag("1-3s", p.run, (key,), (p.run,), here, (z[-1],)))
        elif abs(z[-1]) > 2:
            flags.append(Flag("1-2s", p.run, (key,), (p.run,), here, (z[-1],)))
        for rule, length, beyond in (("2-2s", 2, 2.0), ("4-1s", 4, 1.0), ("10x", 10, 0.0)):
            if _same_side_run(z, length, beyond):
                run, runs = _run_of(pts[i - length + 1 : i + 1])
                flags.append(
                    Flag(
                        rule,
                        run,
                        (key,),
                        runs,
                        f"{key.label()}: the last {length} runs ({', '.join(f'{v:+.2f}' for v in z[-length:])} SD)",
                        tuple(z[-length:]),
                    )
                )
    return flags


def _within_run_flags(points: Sequence[ControlPoint], limits: Mapping[SeriesKey, Limits]) -> list[Flag]:
    """R-4s and 2-2s across the controls of one run (each on its own series' limits)."""
    flags: list[Flag] = []
    by_run: dict[tuple[str, str], list[tuple[float, ControlPoint]]] = {}
    for p in points:
        if p.key in limits and math.isfinite(p.cq):
            by_run.setdefault((p.run, p.key.assay), []).append((limits[p.key].z(p.cq), p))
    for (run, _assay), zs in by_run.items():
        high = [(z, p) for z, p in zs if z > 2]
        low = [(z, p) for z, p in zs if z < -2]
        if high and low:
            flags.append(
                Flag(
                    "R-4s",
                    run,
                    (high[0][1].key, low[0][1].key),
                    (run,),
                    f"{high[0][1].key.label()} at {high[0][0]:+.2f} SD and "
                    f"{low[0][1].key.label()} at {low[0][0]:+.2f} SD in the same run",
                    (high[0][0], low[0][0]),
                )
            )
        for side in (high, low):
            if len(side) >= 2:
                flags.append(
                    Flag(
                        "2-2s",
                        run,
                        tuple(p.key for _, p in side),
                        (run,),
                        "in the same run: " + "; ".join(f"{p.key.label()} at {z:+.2f} SD" for z, p in side),
                        tuple(z for z, _ in side),
                    )
                )
    return flags


def westgard(
    points: Iterable[ControlPoint], limits: Mapping[SeriesKey, Limits], rules: Iterable[str] = tuple(RULES)
) -> list[Flag]:
    """Every Westgard rule violation of ``points`` (series without limits are not judged), oldest run first.

    A rule that fires along a series is reported at the run that completes it (2-2s at the second value);
    a run is flagged by the worst severity of its flags (:func:`run_status`).
    """
    wanted = set(rules)
    unknown = wanted - set(RULES)
    if unknown:
        raise ValueError(f"unknown Westgard rules {sorted(unknown)}; known: {', '.join(RULES)}")
    points = list(points)
    flags: list[Flag] = []
    for key, pts in _series(points).items():
        if key in limits:
            flags.extend(_series_flags(key, pts, limits[key]))
    flags.extend(_within_run_flags(points, limits))
    when = {p.run: p.at for p in points}
    order = list(RULES)
    flags = [f for f in flags if f.rule in wanted]
    return sorted(
        flags,
        key=lambda f: (when.get(f.run, _dt.datetime.min.replace(tzinfo=_dt.UTC)), f.run, order.index(f.rule)),
    )


def run_status(flags: Iterable[Flag], run: str) -> str:
    """``reject``, ``warning`` or ``ok`` for one run, from its flags."""
    sev = {f.severity for f in flags if f.run == run}
    return REJECT if REJECT in sev else WARNING if WARNING in sev else "ok"


# ------------------------------------------------------------------------------------ points from results


def _finite(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def internal_control_targets(expect_ec: Mapping[str, str]) -> list[str]:
    """The internal-control targets of a rule set: those its extraction control must find (``positive``)."""
    return [t for t, outcome in expect_ec.items() if outcome == "positive"]


def control_points(
    result: Mapping, *, run: str, at: _dt.datetime, assay: str, lot: str = "", ic_targets: Sequence[str] = ()
) -> list[ControlPoint]:
    """The control Cq values of one stored analysis result (``samples``, ``controls`` with ``<target>_cq``):
    one point per positive-control and extraction-control target that has a Cq, and the median Cq of each
    internal-control target over the run's specimens."""
    points: list[ControlPoint] = []
    for row in result.get("controls", []):
        kind = str(row.get("role", ""))
        if kind not in ("pc", "ec"):
            continue
        for col, value in row.items():
            cq = _finite(value) if str(col).endswith("_cq") else None
            if cq is not None:
                points.append(ControlPoint(SeriesKey(assay, kind, str(col)[:-3], lot), run, at, cq))
    for target in ic_targets:
        values = [v for s in result.get("samples", []) if (v := _finite(s.get(f"{target}_cq"))) is not None]
        if values:
            points.append(ControlPoint(SeriesKey(assay, "ic", target, lot), run, at, statistics.median(values)))
    return points


# ---------------------------------------------------------------------------------------------- charts


def levey_jennings(
    points: Iterable[ControlPoint], key: SeriesKey, limits: Limits | None, flags: Iterable[Flag] = ()
) -> dict:
    """The data of one Levey-Jennings chart: runs in time order with Cq and z, the mean and 1/2/3 SD lines,
    and the rules that flagged each run (for the points' colours and hover text)."""
    pts = _series(points).get(key, [])
    by_run: dict[str, list[str]] = {}
    for f in flags:
        if key in f.keys:
            by_run.setdefault(f.run, []).append(f.rule)
    lines = {}
    if limits is not None:
        lines = {
            "mean": limits.mean,
            **{
                f"{sign}{k}sd": limits.mean + (k if sign == "+" else -k) * limits.sd for k in (1, 2, 3) for sign in "+-"
            },
        }
    return {
        "key": key,
        "label": key.label(),
        "limits": limits,
        "lines": lines,
        "runs": [p.run for p in pts],
        "at": [p.at for p in pts],
        "cq": [p.cq for p in pts],
        "z": [limits.z(p.cq) if limits else None for p in pts],
        "rules": [sorted(set(by_run.get(p.run, [])), key=list(RULES).index) for p in pts],
    }


# --------------------------------------------------------------------------------------- NTC per week


@dataclass(frozen=True)
class NtcRun:
    """The no-template controls of one run: how many wells, how many amplified."""

    run: str
    at: _dt.datetime
    wells: int
    amplified: int


@dataclass(frozen=True)
class WeekRate:
    """NTC contamination in one ISO week (of the lab's time zone)."""

    week: str  #: e.g. 2026-W49
    runs: int
    wells: int
    amplified: int
    runs_contaminated: int

    @property
    def rate(self) -> float:
        """Fraction of NTC wells that amplified."""
        return self.amplified / self.wells if self.wells else 0.0


def ntc_counts(result: Mapping, *, run: str, at: _dt.datetime) -> NtcRun:
    """The NTC wells of one stored result (``wells`` with ``role`` and ``amplified``)."""
    ntc = [w for w in result.get("wells", []) if w.get("role") == "ntc"]
    return NtcRun(run, at, len(ntc), sum(1 for w in ntc if w.get("amplified")))


def ntc_weekly(runs: Iterable[NtcRun], tz: str | ZoneInfo = "UTC") -> list[WeekRate]:
    """NTC wells amplified per ISO week of ``tz`` (the lab's zone: a Monday-morning run belongs to the lab's
    Monday), oldest week first."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    weeks: dict[str, list[NtcRun]] = {}
    for r in runs:
        year, week, _ = r.at.astimezone(zone).isocalendar()
        weeks.setdefault(f"{year}-W{week:02d}", []).append(r)
    return [
        WeekRate(w, len(rs), sum(r.wells for r in rs), sum(r.amplified for r in rs), sum(1 for r in rs if r.amplified))
        for w, rs in sorted(weeks.items())
    ]
