"""`oligolab design` end to end: from a genome collection to ranked, ready-to-order CRISPR assays.

1. Read the target genomes with the project's readers and project them onto the reference (``collection``).
2. Candidate guides with a valid PAM/PFS and the genomes each detects under the check rules (``candidates``).
3. Guide sets (1 to ``max_guides`` guides) per window, greedy set cover (``selection``); guides with an
   off-target site (check's engine and calls) are removed first (``specificity``).
4. Primers for the chosen chemistry around the best guide sets (``rpa``, ``lamp``, ``pcr``), in distinct regions.
5. The shortlist is checked by `oligolab check` itself over every target genome (``evaluate``) and against
   the off-target collections; activity and crRNA folding are scored (``scoring``).
6. Ranked: most genomes detected (check calls), specific, then fewest variable columns under the oligos
   (robustness to new variants), then predicted activity.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..annotation import Annotation
from ..check import ASSAY_CALLS, CheckOptions
from ..errors import InputError
from ..knowledge import Enzyme, RuleSet, get_enzyme, load_rules
from ..lineages import Lineages
from ..sequences import SeqRecord, read_fasta
from .candidates import GuideCandidates, generate_guides
from .collection import Collection, read_collection
from .conservation import Conservation, conservation, guide_survival, primer_site_survival
from .evaluate import CheckCoverage, check_coverage
from .lamp import design_lamp
from .model import DesignedAssay, assay_set
from .pcr import design_pcr
from .primers import PrimerFactory, design_table
from .rpa import design_rpa, robustness_penalty
from .scoring import cas12a_context, score_guides
from .selection import GuideSet, rank_guide_sets, site_variability, window_guide_sets
from .specificity import assay_offtargets, guide_offtargets, summarise

CHEMISTRIES = ("rpa", "lamp", "pcr")
GUIDE_WINDOW_NT = {"rpa": 100, "lamp": 60, "pcr": 120}  #: span the guides of one assay may occupy


@dataclass
class DesignInputs:
    genomes: list[str | Path]
    metadata: str | Path | None = None
    reference: str | Path | None = None
    annotation: str | Path | None = None
    alias_key: str | Path | None = None
    off_targets: list[str | Path] = field(default_factory=list)
    keep: Callable[[str, str], bool] | None = None  #: (record id, lineage) -> design on this genome?
    related: list[str | Path] = field(default_factory=list)  #: near neighbours of the family (conservation)


@dataclass
class DesignOptions:
    enzyme: str = "LbCas12a"
    amplification: str = "lamp"
    n_assays: int = 3
    max_guides: int = 3
    region: str | None = None  #: gene name (needs annotation) or 1-based 'start-end' on the reference
    max_mismatches: int = 3
    max_gaps: int = 2
    rules_path: str | None = None
    enzymes_dir: str | None = None
    threads: int | None = None
    shortlist: int = 0  #: assays checked in full (default 4 x n_assays, at least 24)
    max_windows: int = 400  #: guide sets tried for primers at most
    window_step: int = 5  #: nt between guide-set windows

    def check_options(self) -> CheckOptions:
        return CheckOptions(
            max_mismatches=self.max_mismatches,
            max_gaps=self.max_gaps,
            rules_path=self.rules_path,
            enzymes_dir=self.enzymes_dir,
            threads=self.threads,
        )


@dataclass
class DesignResult:
    inputs: DesignInputs
    options: DesignOptions
    enzyme: Enzyme
    collection: Collection
    candidates: GuideCandidates
    assays: list[DesignedAssay]  #: ranked, specific first
    rejected: list[DesignedAssay]  #: shortlisted but not specific
    coverage: CheckCoverage
    region: tuple[int, int]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)
    offtarget_sites: object = None
    lineages: Lineages | None = None
    final_names: dict[str, str] = field(default_factory=dict)  #: shortlist name -> final assay name
    conservation: Conservation | None = None
    related: Collection | None = None


def parse_region(text: str | None, reference: SeqRecord, annotation_path: str | Path | None) -> tuple[int, int]:
    """Reference columns [start, end) of a region: a gene (from the annotation) or '1-based start-end'."""
    L = len(reference.seq)
    if not text:
        return 0, L
    m = re.fullmatch(r"\s*(\d[\d,_]*)\s*[-:.]{1,2}\s*(\d[\d,_]*)\s*", text)
    if m:
        a, b = (int(re.sub(r"[,_]", "", g)) for g in m.groups())
        if a < 1 or b < a:
            raise InputError(
                None,
                f"region '{text}' is not a 1-based start-end range",
                "write --region START-END with START <= END, e.g. 28274-29533",
            )
        if b > L:
            raise InputError(
                None,
                f"region '{text}' lies outside the reference {reference.id} ({L:,} nt)",
                f"give coordinates within 1-{L}",
            )
        return a - 1, b
    if annotation_path is None:
        raise InputError(
            None,
            f"region '{text}' is a gene name but no annotation was given",
            "pass --annotation reference.gb, or give coordinates START-END",
        )
    ann = Annotation.from_genbank(annotation_path)
    genes: dict[str, list] = {}  # gene (lower case) -> [name, start, end]
    for cds in ann.cdss:
        lo, hi = int(cds.positions.min()), int(cds.positions.max()) + 1
        g = genes.setdefault(cds.gene.lower(), [cds.gene, lo, hi])
        g[1], g[2] = min(g[1], lo), max(g[2], hi)
    hit = genes.get(text.strip().lower())
    if hit is None:
        raise InputError(
            annotation_path,
            f"no gene '{text}' in the annotation",
            f"use one of {', '.join(sorted(v[0] for v in genes.values()))} or START-END",
        )
    if hit[2] > L:
        raise InputError(
            annotation_path,
            f"gene '{text}' ends at {hit[2]} beyond the reference ({L:,} nt)",
            "give the annotation of the reference you pass with --reference",
        )
    return hit[1], hit[2]


def _check_compatible(enzyme: Enzyme, chemistry: str) -> None:
    if chemistry not in CHEMISTRIES:
        raise InputError(None, f"unknown amplification '{chemistry}'", f"use one of {', '.join(CHEMISTRIES)}")
    if enzyme.target == "rna" and chemistry == "lamp":
        raise InputError(
            None,
            f"{enzyme.name} detects RNA, and LAMP makes DNA without a T7 promoter",
            "use --amplification rpa or pcr (a T7 promoter is added to the forward primer), or a "
            "DNA-targeting enzyme such as LbCas12a with LAMP",
        )
    if not 1 <= enzyme.spacer_length <= 30:
        raise InputError(
            enzyme.path or None,
            f"{enzyme.name}: spacer_length {enzyme.spacer_length} nt; design supports 1-30 nt",
            "set spacer_length in the enzyme file",
        )


@dataclass
class _Run:
    """What the steps of one design share."""

    inputs: DesignInputs
    options: DesignOptions
    enzyme: Enzyme
    chemistry: str
    rules: RuleSet
    lineages: Lineages
    progress: Callable[[str, float], None] | None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    collection: Collection | None = None
    related: Collection | None = None
    conservation: Conservation | None = None
    region: tuple[int, int] = (0, 0)
    cands: GuideCandidates | None = None
    survival: np.ndarray | None = None

    def step(self, name: str, frac: float = 0.0) -> None:
        if self.progress is not None:
            self.progress(name, frac)

    @property
    def reference(self) -> SeqRecord:
        assert self.collection is not None  # read first (_read)
        return self.collection.reference.record

    @property
    def check_options(self) -> CheckOptions:
        return self.options.check_options()


def _prepare(inputs: DesignInputs, options: DesignOptions, progress) -> tuple[_Run, SeqRecord | None]:
    """Validate every option and input that can be checked before the genomes are read."""
    enzyme = get_enzyme(options.enzyme, options.enzymes_dir)
    chemistry = options.amplification.lower()
    _check_compatible(enzyme, chemistry)
    if options.n_assays < 1 or options.max_guides < 1:
        raise InputError(None, "--n-assays and --max-guides must be at least 1", "give positive numbers")
    rules = load_rules(options.rules_path, options.enzymes_dir)
    if not rules.covers(enzyme.family):
        raise InputError(
            rules.path, f"no rule for {enzyme.family} guides", f'add [[rule]] entries with groups = ["{enzyme.family}"]'
        )
    reference = next(iter(read_fasta(inputs.reference)), None) if inputs.reference else None
    lineages = Lineages(inputs.alias_key)
    for p in list(inputs.off_targets) + list(inputs.related):  # fail early on unreadable side collections
        next(iter(read_fasta(p)))
    if reference is not None:  # and on a bad region, before the genomes are read
        parse_region(options.region, reference, inputs.annotation)
    return _Run(inputs, options, enzyme, chemistry, rules, lineages, progress), reference


def _read(run: _Run, reference: SeqRecord | None) -> None:
    """Target genomes (and relatives) in reference coordinates, the region, and the conservation rates."""
    t0 = time.perf_counter()
    run.step("reading and projecting genomes")
    inputs = run.inputs
    run.collection = read_collection(
        inputs.genomes,
        reference,
        inputs.metadata,
        keep=inputs.keep,
        progress=lambda i, n: run.step(f"reading and projecting genomes ({i:,})"),
    )
    run.region = parse_region(run.options.region, run.reference, inputs.annotation)
    if inputs.related:
        run.step("reading and projecting related genomes")
        run.related = read_collection(inputs.related, run.reference, lineage_from_id=False)
    run.conservation = conservation(run.collection, run.related)
    run.timings["read_project_s"] = time.perf_counter() - t0
    col = run.collection
    if not inputs.off_targets:
        run.notes.append(
            "no off-target collection was given: specificity was not screened (pass near neighbours "
            "and human background with --off-target)"
        )
    if not inputs.related:
        run.notes.append(
            "no related collection was given: robustness to unseen variation is estimated from the "
            "design genomes alone (pass near neighbours of the family with --related)"
        )
    if col.reversed_ids:
        run.notes.append(
            f"{len(col.reversed_ids)} genomes were given as reverse complement and were turned "
            f"({', '.join(col.reversed_ids[:5])}{' ...' if len(col.reversed_ids) > 5 else ''})"
        )
    if col.unanchored:
        run.notes.append(
            f"{len(col.unanchored)} genomes share too little sequence with the reference in places; "
            "those stretches count as 'no data'"
        )


def _candidates(run: _Run) -> None:
    t1 = time.perf_counter()
    run.step("candidate guides")
    assert run.collection is not None and run.conservation is not None  # read first (_read)
    e = run.enzyme
    run.cands = generate_guides(
        run.collection, e, run.rules, max_mismatches=run.options.max_mismatches, columns=run.region
    )
    if not len(run.cands):
        where = f"in {run.options.region}" if run.options.region else "in the genomes"
        raise InputError(
            None,
            f"no candidate {e.name} guide {where}: no {e.spacer_length}-nt site with a "
            f"{e.motif} {e.motif_name} binds any genome",
            "widen --region, or choose another --enzyme",
        )
    run.survival = run.cands.survival = guide_survival(run.cands, run.conservation, run.rules)
    run.timings["candidates_s"] = time.perf_counter() - t1


def _environment(run: _Run, sets: list[GuideSet]) -> np.ndarray:
    """Per guide set: survival of the best primer sites on each side within amplicon reach (a cheap view of how
    robust the primers around it can be; the primers themselves are chosen later)."""
    table = design_table(run.chemistry)
    length = int(table["primer_length_nt"][0])
    assert run.conservation is not None  # read first (_read)
    fwd, rev = primer_site_survival(run.conservation, run.rules, length)
    reach = int(table.get("amplicon_nt", table.get("f2_b2_nt", [0, 200]))[1])
    per_side = 3 if run.chemistry == "lamp" else 1
    out = np.ones(len(sets))
    n = len(fwd)
    for k, g in enumerate(sets):
        f = fwd[max(0, g.end - reach) : max(0, min(n, g.start - length + 1))]
        r = rev[min(n, g.end) : max(0, min(n, g.start + reach - length + 1))]
        out[k] = (f.max() if len(f) else 0.0) ** per_side * (r.max() if len(r) else 0.0) ** per_side
    return out


def _guide_sets(run: _Run) -> list[GuideSet]:
    """Guide sets per window, ranked, with off-target guides removed (iterating until the sets tried are all
    screened)."""
    t2 = time.perf_counter()
    run.step("guide sets and specificity")
    cands, o = run.cands, run.options
    assert cands is not None and run.survival is not None and run.collection is not None  # earlier steps
    variability = site_variability(cands, run.collection.profile().differ)
    excluded = np.zeros(len(cands), dtype=bool)
    screened: dict[str, list] = {}
    sets: list[GuideSet] = []
    for _ in range(4):
        sets = window_guide_sets(
            cands,
            GUIDE_WINDOW_NT[run.chemistry],
            o.window_step,
            o.max_guides,
            run.survival,
            variability,
            same_strand=run.enzyme.target == "rna",
            columns=run.region,
            exclude=excluded,
        )
        sets = rank_guide_sets(sets, run.collection.n, _environment(run, sets))
        todo = sorted({cands.spacer(m) for g in sets[: o.max_windows] for m in g.members} - set(screened))
        if not todo:
            break
        screened.update(guide_offtargets(run.enzyme, todo, run.inputs.off_targets, run.reference, run.check_options))
        bad = {sp for sp, hits in screened.items() if hits}
        newly = [i for g in sets for i in g.members if cands.spacer(i) in bad and not excluded[i]]
        if not newly:
            break
        excluded[newly] = True
    sets = [g for g in sets if not any(cands.spacer(m) in screened and screened[cands.spacer(m)] for m in g.members)]
    if not sets:
        where = f" in {o.region}" if o.region else ""
        raise InputError(
            None,
            f"no guide set found: every candidate guide{where} has an off-target site or no window holds one",
            "widen --region or add --max-guides",
        )
    run.timings["guide_sets_s"] = time.perf_counter() - t2
    return sets


@dataclass
class _Shortlist:
    good: list[DesignedAssay] = field(default_factory=list)
    bad: list[DesignedAssay] = field(default_factory=list)
    site_frames: list = field(default_factory=list)
    tried: int = 0  #: guide sets tried
    no_primers: int = 0  #: guide sets without primers meeting the constraints
    overlapping: int = 0  #: assays dropped because their amplicon overlaps a better one


def _build_batch(
    run: _Run, sets: list[GuideSet], state: dict, sl: _Shortlist, factory: PrimerFactory, want: int
) -> list[tuple[DesignedAssay, GuideSet, int]]:
    """Assays for the next guide sets (and retries), each in a region no earlier assay occupies."""
    builders: dict[str, Callable[[str, GuideSet, GuideCandidates, PrimerFactory], DesignedAssay | None]] = {
        "rpa": design_rpa,
        "lamp": design_lamp,
        "pcr": design_pcr,
    }
    build = builders[run.chemistry]
    assert run.cands is not None  # found first (_candidates)
    pending: list[tuple[DesignedAssay, GuideSet, int]] = []
    taken = state["taken"]
    while state["retry"] and len(pending) < want:
        gs, attempt = state["retry"].pop(0)
        state["serial"] += 1
        a = build(f"cand{state['serial']}", gs, run.cands, factory)
        if a is not None:
            pending.append((a, gs, attempt))
    while state["next"] < len(sets) and len(pending) < want:
        gs = sets[state["next"]]
        state["next"] += 1
        run.step("primers", state["next"] / len(sets))
        if any(gs.start < b and a < gs.end for a, b in taken):
            continue
        sl.tried += 1
        state["serial"] += 1
        a = build(f"cand{state['serial']}", gs, run.cands, factory)
        if a is None:
            sl.no_primers += 1
            continue
        if any(a.amplicon[0] < b and x < a.amplicon[1] for x, b in taken):
            sl.overlapping += 1
            continue
        pending.append((a, gs, 0))
        taken.append(a.amplicon)
    return pending


def _shortlist(run: _Run, sets: list[GuideSet]) -> _Shortlist:
    """Primers around the best guide sets, one assay per region; assays whose primers could amplify an
    off-target record are rebuilt without those primers, and more regions are tried until the shortlist holds
    enough specific assays (every guide set is tried before giving up)."""
    t3 = time.perf_counter()
    o = run.options
    assert run.collection is not None  # read first (_read)
    factory = PrimerFactory(run.collection, run.rules, o.max_mismatches, run.conservation)
    want_n = o.shortlist or max(24, 4 * o.n_assays)
    sl = _Shortlist()
    state: dict[str, Any] = {"taken": [], "retry": [], "next": 0, "serial": 0}
    while state["next"] < len(sets) or state["retry"]:
        if state["next"] >= o.max_windows and not state["retry"]:
            if _distinct(sl.good) >= o.n_assays:
                break  # the best windows gave enough regions; the rest are tried only when they did not
        elif len(sl.good) >= want_n:
            break
        want = want_n - len(sl.good) if state["next"] < o.max_windows else max(1, o.n_assays - _distinct(sl.good))
        pending = _build_batch(run, sets, state, sl, factory, want)
        if not pending:
            break
        run.step("off-target screen of primer sets")
        sites, outcomes = assay_offtargets(
            assay_set([p[0] for p in pending]), run.inputs.off_targets, run.reference, run.check_options
        )
        spec = summarise(sites, outcomes, [p[0].name for p in pending])
        if len(sites):
            sl.site_frames.append(sites)
        for a, gs, attempt in pending:
            a.scores["specificity"] = spec[a.name]
            if spec[a.name]["specific"]:
                sl.good.append(a)
                continue
            sl.bad.append(a)
            if attempt < 2 and not spec[a.name]["guide_sites"]:
                factory.banned |= _offtarget_primer_sites(a, sites)
                state["retry"].append((gs, attempt + 1))
    run.timings["primers_s"] = time.perf_counter() - t3
    if not sl.good:
        what = (
            f"{len(sl.bad)} primer sets were found but every one could amplify an off-target record"
            if sl.bad
            else f"no {run.chemistry.upper()} primers meet the constraints around the {len(sets)} best guide sets"
        )
        raise InputError(
            None,
            f"no specific assay: {what}{(' in ' + o.region) if o.region else ''}",
            "widen --region, try another --amplification, or relax ["
            + run.chemistry
            + ".design] in a copy of knowledge/amplification.toml",
        )
    return sl


def _distinct(assays: list[DesignedAssay]) -> int:
    """Assays whose amplicons overlap none of the assays before them."""
    kept: list[tuple[int, int]] = []
    for a in assays:
        if not any(a.amplicon[0] < b and x < a.amplicon[1] for x, b in kept):
            kept.append(a.amplicon)
    return len(kept)


def _finish(run: _Run, sl: _Shortlist) -> DesignResult:
    """Score the shortlist, check it over every target genome, rank, keep one assay per region, name."""
    t4 = time.perf_counter()
    o = run.options
    made = sl.good[: o.shortlist or max(24, 4 * o.n_assays)]
    assert run.collection is not None and run.cands is not None  # earlier steps
    run.step("scoring guides")
    _score(made, run.cands, run.collection.profile())
    run.step("checking the shortlist against the target genomes")
    keep_ids = set(run.collection.ids)
    coverage = check_coverage(
        assay_set(made),
        run.inputs.genomes,
        run.reference,
        run.check_options,
        keep=(lambda rid: rid in keep_ids) if run.inputs.keep is not None else None,
    )
    for a in made:
        a.scores["check"] = coverage.counts(coverage.index(a.name))
    run.timings["check_s"] = time.perf_counter() - t4
    final: list[DesignedAssay] = []
    n_genomes = run.collection.n
    for a in sorted(made, key=lambda a: _rank_key(a, n_genomes)):  # best first, one assay per region
        if any(a.amplicon[0] < f.amplicon[1] and f.amplicon[0] < a.amplicon[1] for f in final):
            continue
        final.append(a)
        if len(final) == o.n_assays:
            break
    rename = {a.name: f"{run.enzyme.name}-{run.chemistry.upper()}-{r}" for r, a in enumerate(final, 1)}
    for a in final:
        _rename(a, rename[a.name])
    coverage.assay_names = [rename.get(n, n) for n in coverage.assay_names]
    if len(final) < o.n_assays:
        run.notes.append(_why_fewer(run, sl, len(final)))
    sites = pd.concat(sl.site_frames, ignore_index=True) if sl.site_frames else None
    return DesignResult(
        run.inputs,
        o,
        run.enzyme,
        run.collection,
        run.cands,
        final,
        sl.bad,
        coverage,
        run.region,
        run.timings,
        run.notes,
        sites,
        run.lineages,
        rename,
        run.conservation,
        run.related,
    )


def _why_fewer(run: _Run, sl: _Shortlist, n_final: int) -> str:
    """Why fewer assays than asked were returned (every window was tried before this is said)."""
    o = run.options
    region = f" in {o.region}" if o.region else ""
    return (
        f"only {n_final} assays in distinct regions{region} for the {o.n_assays} requested: {sl.tried} guide-set "
        f"regions were tried, {sl.no_primers} had no {run.chemistry.upper()} primers meeting the constraints, "
        f"{sl.overlapping} overlapped a better assay's amplicon, {len(sl.bad)} primer sets could amplify an "
        "off-target record; widen --region, allow more guides (--max-guides), or relax the primer limits in a "
        "copy of knowledge/amplification.toml"
    )


def design(
    inputs: DesignInputs, options: DesignOptions | None = None, progress: Callable[[str, float], None] | None = None
) -> DesignResult:
    """Design ranked assays for a collection (see the module docstring for the steps)."""
    options = options if options is not None else DesignOptions()
    t0 = time.perf_counter()
    run, reference = _prepare(inputs, options, progress)
    _read(run, reference)
    _candidates(run)
    sets = _guide_sets(run)
    shortlist = _shortlist(run, sets)
    result = _finish(run, shortlist)
    result.timings["total_s"] = time.perf_counter() - t0
    return result


def _offtarget_primer_sites(a: DesignedAssay, sites) -> set[tuple[int, int, int]]:
    """Reference sites (start, end, strand) of the primers of ``a`` that bind or are degraded in an
    off-target record (so the assay can be rebuilt without them)."""
    out: set[tuple[int, int, int]] = set()
    if sites is None or not len(sites):
        return out
    pos = sites[(sites["assay"] == a.name) & sites["call"].isin(("binds", "degraded"))]
    names = set(pos["oligo"])
    for o in a.primers:
        if o.part_sites:
            for part, (s, e), strand in zip(
                ("F1c", "F2") if o.role == "FIP" else ("B1c", "B2"), o.part_sites, (1 - o.strand, o.strand)
            ):
                if f"{o.name}:{part}" in names:
                    out.add((s, e, strand))
        elif o.name in names:
            out.add((o.start, o.end, o.strand))
    return out


def _score(assays: list[DesignedAssay], cands: GuideCandidates, profile) -> None:
    members = sorted({m for a in assays for m in a.guide_members})
    contexts = [
        cas12a_context(profile, int(cands.column[m]), int(cands.strand[m]), cands.footprint)
        if cands.enzyme.activity_model == "cas12a_activity_v1"
        else None
        for m in members
    ]
    scores = dict(zip(members, score_guides(cands.enzyme, [cands.spacer(m) for m in members], contexts)))
    for a in assays:
        gsc = [scores[m] for m in a.guide_members]
        a.scores["guides"] = gsc
        vals = [g.activity for g in gsc if not math.isnan(g.activity)]
        a.scores["activity"] = float(np.mean(vals)) if vals else float("nan")
        a.scores["activity_kind"] = gsc[0].activity_kind if gsc else "unavailable"
        a.scores["robustness_penalty"] = robustness_penalty(a.prescore)


def _rank_key(a: DesignedAssay, n_genomes: int) -> tuple:
    """Best first: the expected share of genomes detected, present (the check's calls) and unseen (the assay's
    survival); then detected or at risk, fewest variable columns, loop primers, activity, fewer guides."""
    c = a.scores["check"]
    act = a.scores.get("activity", float("nan"))
    expected = c["detected"] / max(1, n_genomes) * a.prescore.get("survival", 1.0)
    return (
        -round(expected, 4),
        -(c["detected"] + c["at risk"]),
        a.scores["robustness_penalty"],
        -a.prescore.get("loop_primers", 0),
        -(act if not math.isnan(act) else 0.0),
        len(a.guide_members),
        a.amplicon[1] - a.amplicon[0],
        a.amplicon[0],
    )


def _rename(a: DesignedAssay, name: str) -> None:
    old = a.name
    a.name = name
    for o in a.oligos:
        if o.name.startswith(old + "-"):
            o.name = name + o.name[len(old) :]


def assay_calls_names() -> tuple[str, ...]:
    return ASSAY_CALLS
