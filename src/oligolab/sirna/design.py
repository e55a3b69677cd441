"""The pipelines: design (every 19-nt site of each target transcript as a candidate) and score (given duplexes
located on each target); both go through the same evaluation (:mod:`.evaluate`) and ranking: score = predicted
knock-down minus the rule file's penalties, candidates with a near-perfect off-target last.

Inputs are read and validated before any computing; the off-target transcriptome is an index built once by
`oligolab sirna index` (or, for a few transcripts, built in memory from ``--off-target`` FASTA files) and searched
once for the candidates of all targets together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .candidates import (
    Candidates,
    candidate_positions,
    design_candidates,
    locate_duplexes,
)
from .duplexes import read_duplexes
from .evaluate import (
    candidate_table,
    flag_texts,
    penalties,
    predict_efficacy,
    run_checks,
)
from .index import TranscriptIndex, build_index, load_index
from .inputs import KnownSirna, read_known, read_mirna_seeds, read_variants
from .offtarget import NearPerfect, near_perfect, seed_offtarget_rows
from .rules import load_patterns, load_sirna_rules
from .targets import Target, resolve_targets
from .transcripts import SITE, Transcript

#: what the knock-down prediction does and does not account for (shown in every report)
PREDICTION_SCOPE = (
    "The predicted knock-down is that of the unmodified 19-bp duplex core in cultured cells (the training data: "
    "siRBench, unmodified or lightly modified siRNAs transfected into cell lines). It accounts for the guide and "
    "passenger sequence, duplex end asymmetry, strand folding and target-site accessibility. It does NOT account "
    "for the chemical modification pattern being ordered (2'-OMe/2'-F placement, phosphorothioates, GNA, "
    "5'-vinylphosphonate), for the delivery route (GalNAc conjugate or lipid nanoparticle), for dose, tissue "
    "exposure or duration, or for in vivo metabolism. Given duplexes with non-Watson-Crick target pairs are "
    "extrapolated with the rule file's pairing factors."
)


@dataclass
class SirnaOptions:
    target_id: str | None = None  #: one record (kept for callers of the single-target API)
    target_ids: list[str] = field(default_factory=list)
    genes: list[str] = field(default_factory=list)  #: gene symbols (the MANE Select transcript where known)
    layout: str = ""  #: '' = the modification pattern's layout
    overhang: str = "dTdT"
    pattern: str = "galnac-full"
    guide_gna: list[int] = field(default_factory=list)  #: guide positions made GNA (e.g. [7])
    guide_vp: bool = False  #: 5'-(E)-vinylphosphonate on the guide
    top: int = 20
    avoid: list[tuple[int, int]] = field(default_factory=list)  #: 1-based inclusive ranges not to target
    rules_path: str | None = None
    threads: int | None = None


@dataclass
class SirnaInputs:
    target: str | Path | None = None
    off_targets: list[str | Path] = field(default_factory=list)
    orthologs: list[str | Path] = field(default_factory=list)
    variants: str | Path | None = None
    mirnas: str | Path | None = None
    known: str | Path | None = None  #: table of reference siRNAs (e.g. approved drugs) to locate in the ranking
    index: str | Path | None = None  #: a folder written by `oligolab sirna index`


@dataclass
class SirnaResult:
    target: Transcript
    variants_of_target: list[Transcript]
    table: pd.DataFrame  #: one row per candidate, ranked
    offtarget_hits: pd.DataFrame  #: near-perfect off-target matches
    info: dict[str, Any]
    seed_offtargets: pd.DataFrame = field(default_factory=pd.DataFrame)  #: most repressed genes of top candidates


@dataclass
class Run:
    """What every target of a run shares: rules, chemistry, the off-target index, the user's tables."""

    inputs: SirnaInputs
    options: SirnaOptions
    rules: dict[str, Any]
    pattern: dict[str, Any]
    layout: str
    index: TranscriptIndex | None
    targets: list[Target]
    variants: dict[str, list]  #: per target id
    mirna_seeds: dict[str, list[str]]
    known: list[KnownSirna]


def chemistry_pattern(options: SirnaOptions) -> dict[str, Any]:
    """The modification pattern with the run's GNA and vinylphosphonate options applied."""
    patterns = load_patterns()
    if options.pattern not in patterns:
        raise InputError(None, f"unknown modification pattern {options.pattern!r}", f"use one of {', '.join(patterns)}")
    pattern = dict(patterns[options.pattern])
    if options.guide_gna:
        if any(not 1 <= p <= 19 for p in options.guide_gna):
            raise InputError(
                None,
                f"--guide-gna positions {options.guide_gna} outside guide nt 1-19",
                "give guide positions 1-19, e.g. 7 (the seed-destabilising position)",
            )
        pattern["guide_gna"] = sorted(set(options.guide_gna) | set(pattern.get("guide_gna", [])))
    if options.guide_vp:
        pattern["guide_5prime_vp"] = True
    return pattern


def prepare(inputs: SirnaInputs, options: SirnaOptions, say: Callable[[str], None]) -> Run:
    """Rules, chemistry, index, targets and the user's tables, all read and validated before computing."""
    rules = load_sirna_rules(options.rules_path)
    pattern = chemistry_pattern(options)
    layout = options.layout or pattern.get("layout", "19+2")
    if layout not in ("19+2", "21/23"):
        raise InputError(None, f"unknown layout {layout!r}", "use 19+2 or 21/23")
    if inputs.index and inputs.off_targets:
        raise InputError(
            inputs.index,
            "both --index and --off-target given",
            "index the off-target transcripts with `oligolab sirna index` and give --index only",
        )
    index = load_index(inputs.index) if inputs.index else None
    ids = [*([options.target_id] if options.target_id else []), *options.target_ids]
    targets = resolve_targets(inputs.target, index, ids, options.genes)
    variants = {
        t.transcript.id: read_variants(inputs.variants, t.transcript.id, len(t.transcript.seq))
        if inputs.variants
        else []
        for t in targets
    }
    mirnas = read_mirna_seeds(inputs.mirnas) if inputs.mirnas else {}
    known = read_known(inputs.known) if inputs.known else []
    if index is None and inputs.off_targets:
        say("indexing the off-target transcripts")
        index = build_index(list(inputs.off_targets), None, rules)
    return Run(inputs, options, rules, pattern, layout, index, targets, variants, mirnas, known)


def search_all(run: Run, cands: list[Candidates], say: Callable[[str], None]) -> list[NearPerfect | None]:
    """One near-perfect search for the candidates of all targets; the hits split back per target."""
    if run.index is None:
        return [None] * len(cands)
    k = int(run.rules["offtarget"]["max_mismatches"])
    guides = [g for c in cands for g in c.guides19]
    hits = near_perfect(run.index, guides, k, run.options.threads, say)
    out: list[NearPerfect | None] = []
    lo = 0
    for c in cands:
        out.append(hits.subset(lo, lo + len(c)))
        lo += len(c)
    return out


def evaluate(run: Run, c: Candidates, np_hits: NearPerfect | None) -> SirnaResult:
    """Score, check and rank one target's candidates."""
    eff, acc = predict_efficacy(c)
    ch = run_checks(
        c,
        run.rules,
        run.index,
        np_hits,
        run.variants[c.target.transcript.id],
        run.mirna_seeds,
        list(run.inputs.orthologs),
    )
    hard, penalty, gc_out, run_bad = penalties(run.rules, ch, len(c.target.variants))
    table = candidate_table(c, eff, acc, ch, hard, eff - penalty, flag_texts(run.rules, c, ch, hard, gc_out, run_bad))
    info = design_info(run, c.target, table)
    info["known"] = locate_known(run.known, c.target.transcript, table)
    seeds = seed_list(run, c, ch.own_rows, table)
    return SirnaResult(c.target.transcript, c.target.variants, table, ch.hits, info, seeds)


def seed_list(run: Run, c: Candidates, own_rows: Any, table: pd.DataFrame) -> pd.DataFrame:
    """The off-target genes most repressed by the seeds of the top candidates."""
    cols = ["rank", "position", "transcript", "gene", "predicted_repression"]
    if run.index is None or own_rows is None or not len(table):
        return pd.DataFrame(columns=cols)
    top = table.head(run.options.top)
    pos_to_cand = {int(p) + 1: i for i, p in enumerate(c.positions)}
    from .offtarget import seed_code

    codes = [seed_code(g) for g in c.guides19]
    rows = seed_offtarget_rows(run.index, codes, own_rows, [pos_to_cand[int(p)] for p in top["position"]])
    rank_of = dict(zip(top["position"], top["rank"]))
    out = [(rank_of[int(c.positions[i]) + 1], int(c.positions[i]) + 1, tid, gene, rep) for i, tid, gene, rep in rows]
    return (
        pd.DataFrame(out, columns=cols)
        .sort_values(["rank", "predicted_repression"], ascending=[True, False], kind="stable")
        .reset_index(drop=True)
    )


def design_targets(
    inputs: SirnaInputs, options: SirnaOptions | None = None, progress: Callable[[str], None] | None = None
) -> list[SirnaResult]:
    """Every candidate of each target transcript, scored, checked and ranked (one result per target)."""
    options = options or SirnaOptions()
    say = progress or (lambda msg: None)
    run = prepare(inputs, options, say)
    cands = []
    for t in run.targets:
        positions = candidate_positions(t.transcript.seq, options.avoid, run.layout)
        if len(positions) == 0:
            raise InputError(
                inputs.target, "no candidate site left", "narrow the --avoid ranges", record=t.transcript.id
            )
        cands.append(design_candidates(t, positions, run.layout, options.overhang, run.pattern))
        say(f"{len(positions)} candidate sites on {t.transcript.id}")
    hits = search_all(run, cands, say)
    return [evaluate(run, c, h) for c, h in zip(cands, hits)]


def design_sirnas(
    inputs: SirnaInputs, options: SirnaOptions | None = None, progress: Callable[[str], None] | None = None
) -> SirnaResult:
    """Every candidate of the (first) target transcript, scored, checked and ranked."""
    return design_targets(inputs, options, progress)[0]


def score_duplexes(
    inputs: SirnaInputs,
    duplexes_path: str | Path,
    options: SirnaOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[SirnaResult]:
    """Given duplexes (CSV/TSV/FASTA, plain or modified notation) scored on each target they pair with, with the
    same columns and ranking rule as a design."""
    options = options or SirnaOptions()
    say = progress or (lambda msg: None)
    duplexes = read_duplexes(duplexes_path)
    run = prepare(inputs, options, say)
    located = [locate_duplexes(t, duplexes, run.rules) for t in run.targets]
    cands = [c for c, _ in located]
    placed = {n for c in cands for n in c.names}
    if not placed:
        raise InputError(
            duplexes_path,
            f"no duplex pairs with {', '.join(t.transcript.id for t in run.targets)} "
            f"(at most {4} non-Watson-Crick pairs over guide nt 1-19)",
            "check the strands (guide = antisense) and the target",
        )
    hits = search_all(run, cands, say)
    results = []
    for c, h in zip(cands, hits):
        if len(c):
            r = evaluate(run, c, h)
            r.info["duplexes_file"] = Path(duplexes_path).name
            r.info["not_on_any_target"] = [d.name for d in duplexes if d.name not in placed]
            results.append(r)
    return results


def design_info(run: Run, target: Target, table: pd.DataFrame) -> dict[str, Any]:
    """What was designed against, with which files, pattern, index and model (the report's methods)."""
    from ..models import sirna_efficacy

    t = target.transcript
    inputs = run.inputs
    idx = run.index.meta if run.index is not None else {}
    return {
        "target": {
            "id": t.id,
            "description": t.description,
            "length": len(t.seq),
            "cds": [t.cds[0] + 1, t.cds[1]] if t.cds else None,
            "cds_source": t.cds_source,
            "gene": target.gene,
            "transcript_variants": [v.id for v in target.variants],
        },
        "candidates": len(table),
        "layout": run.layout,
        "pattern": run.pattern["name"],
        "pattern_description": run.pattern["description"],
        "pattern_source": run.pattern.get("source", ""),
        "guide_gna": run.pattern.get("guide_gna", []),
        "guide_5prime_vp": bool(run.pattern.get("guide_5prime_vp")),
        "prediction_scope": PREDICTION_SCOPE,
        "offtarget": {
            "files": [Path(p).name for p in inputs.off_targets],
            "index": str(Path(inputs.index).name) if inputs.index else None,
            "transcripts_examined": int(idx.get("transcripts", 0)),
            "genes": int(idx.get("genes", 0)),
            "max_mismatches": int(run.rules["offtarget"]["max_mismatches"]),
            "cds_source": idx.get("cds_source", {}),
            "sources": idx.get("transcripts_files", []),
            "annotation": idx.get("annotation_file"),
            "seed_model": idx.get("seed_model", {}),
            "utr_note": utr_note(idx),
        },
        "orthologs": [Path(p).name for p in inputs.orthologs],
        "variants": Path(inputs.variants).name if inputs.variants else None,
        "model": getattr(sirna_efficacy, "MODEL_INFO", {}),
    }


def utr_note(meta: dict[str, Any]) -> str:
    """Says how many off-target transcripts had no annotated CDS (their 3' UTR then follows the longest ORF)."""
    src = meta.get("cds_source", {})
    guessed = int(src.get("longest ORF", 0)) + int(src.get("header", 0))
    if not meta or not guessed:
        return ""
    return (
        f"{src.get('longest ORF', 0)} of {meta.get('transcripts', 0)} off-target transcripts had no annotated "
        f"CDS: their 3' UTR is taken after the longest ORF; {src.get('header', 0)} from a CDS= header field"
    )


def locate_known(known: list[KnownSirna], target: Transcript, table: pd.DataFrame) -> list[dict[str, Any]]:
    """Where reference siRNAs (e.g. approved drugs) targeting this transcript fall in the ranking: their guide's
    19-nt core matched to a candidate site (a perfect match of nt 2-19: nt 1 need not pair)."""
    from ..sequences import reverse_complement

    out = []
    for row in known:
        if row.strand != "antisense":
            continue
        core = reverse_complement(row.sequence[:SITE].replace("U", "T"))
        p = target.seq.find(core)
        if p < 0:
            p = target.seq.find(core[:-1])  # guide nt 1 unpaired (e.g. givosiran's 5' U facing G)
        if p < 0:
            continue
        match = table[table["position"] == p + 1]
        if not len(match):
            continue
        r = match.iloc[0]
        out.append(
            {
                "name": row.name,
                "position": p + 1,
                "rank": int(r["rank"]),
                "of": len(table),
                "percentile": round(100.0 * (1 - (r["rank"] - 1) / len(table)), 1),
                "predicted_efficacy": float(r["predicted_efficacy"]),
                "flags": r["flags"],
            }
        )
    return out
