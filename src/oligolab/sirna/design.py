"""The design: every 19-nt site of the target transcript as a candidate, scored, checked and ranked.

Each candidate is scored for knock-down by the efficacy model (``oligolab.models.sirna_efficacy``), checked for
off-targets (:mod:`.offtarget`), SNPs, miRNA-like seeds, conservation in ortholog transcripts, transcript-variant
coverage and sequence/safety rules (``knowledge/sirna-rules.toml``), given strands in a chemical modification
pattern (:mod:`.chemistry`), and ranked: score = predicted efficacy minus the rule file's penalties, candidates
with a near-perfect off-target last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..sequences import reverse_complement
from .chemistry import duplex_strands, modified_notation, rc_rna
from .figures import gc_percent, immune_motifs, longest_run, seed_duplex_dg
from .inputs import KnownSirna, Variant, read_known, read_mirna_seeds, read_variants
from .offtarget import (OfftargetSearch, ortholog_mismatches, search_offtargets, seed_match_counts,
                        site_patterns)
from .rules import load_patterns, load_sirna_rules
from .transcripts import SITE, Transcript, read_transcripts, region_of

FLANK = 19  #: nt of context on each side of a site given to the efficacy model


@dataclass
class SirnaOptions:
    target_id: str | None = None
    layout: str = ""  #: '' = the modification pattern's layout
    overhang: str = "dTdT"
    pattern: str = "galnac-full"
    top: int = 20
    avoid: list[tuple[int, int]] = field(default_factory=list)  #: 1-based inclusive ranges not to target
    rules_path: str | None = None
    threads: int | None = None


@dataclass
class SirnaInputs:
    target: str | Path
    off_targets: list[str | Path] = field(default_factory=list)
    orthologs: list[str | Path] = field(default_factory=list)
    variants: str | Path | None = None
    mirnas: str | Path | None = None
    known: str | Path | None = None  #: table of reference siRNAs (e.g. approved drugs) to locate in the ranking


@dataclass
class SirnaResult:
    target: Transcript
    variants_of_target: list[Transcript]
    table: pd.DataFrame  #: one row per candidate, ranked
    offtarget_hits: pd.DataFrame  #: near-perfect off-target matches
    info: dict[str, Any]


def choose_target(path: str | Path, target_id: str | None) -> tuple[Transcript, list[Transcript]]:
    """The target record (``target_id`` or the first) and the other records of its gene (its variants)."""
    records = read_transcripts(path)
    if target_id:
        matches = [t for t in records if t.id == target_id or t.id.split(".")[0] == target_id]
        if not matches:
            raise InputError(path, f"no record '{target_id}'", f"choose one of {', '.join(t.id for t in records[:10])}")
        target = matches[0]
    else:
        target = records[0]
    if len(target.seq) < SITE + 2 * 4:
        raise InputError(path, f"transcript {target.id} has {len(target.seq)} nt", "give a full mRNA",
                         record=target.id)
    gene = target.gene
    variants = [t for t in records if t.id != target.id and gene is not None and t.gene == gene]
    return target, variants


def candidate_positions(seq: str, avoid: list[tuple[int, int]], layout: str) -> np.ndarray:
    """0-based starts of the sites that hold only A/C/G/T, outside the avoided ranges (and with 4 nt upstream
    in the 21/23 layout, whose guide overhang pairs there)."""
    n = len(seq) - SITE + 1
    positions = np.arange(n)
    keep = np.ones(n, dtype=bool)
    for lo, hi in avoid:  # 1-based inclusive ranges
        keep &= ~((positions + SITE > lo - 1) & (positions < hi))
    keep &= np.array(["N" not in seq[p:p + SITE] and set(seq[p:p + SITE]) <= set("ACGT") for p in positions])
    if layout == "21/23":
        keep &= positions >= 4
    return positions[keep]


def predict_efficacy(seq: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predicted knock-down, site accessibility (the transcript folded once with a sliding window) and the
    19-nt guides (RNA) of the candidates."""
    from ..models.sirna_efficacy import predict_sirna_efficacy, site_accessibility

    guides19 = [rc_rna(seq[p:p + SITE].replace("T", "U")) for p in positions]
    acc = np.asarray(site_accessibility(seq))[positions]
    padded = "N" * FLANK + seq + "N" * FLANK
    contexts = [padded[p:p + SITE + 2 * FLANK] for p in positions]
    eff = np.asarray(predict_sirna_efficacy(guides19, contexts, accessibility=acc))
    return eff, acc, guides19


def excluded_factory(target: Transcript, variants: list[Transcript]) -> Callable[[Transcript], bool]:
    """Off-target transcripts not searched: the target, its variants and any transcript of its gene."""
    ids = {target.id, *(v.id for v in variants)}
    gene = target.gene

    def excluded(t: Transcript) -> bool:
        return t.id in ids or (gene is not None and t.gene == gene)

    return excluded


def snp_flags(var_list: list[Variant], positions: np.ndarray, min_frequency: float) -> tuple[list[str], list[bool]]:
    """Per candidate: the variants at or above ``min_frequency`` inside its site, and whether one is in the
    seed target (site nt 12-18)."""
    flags, in_seed = [], []
    for p in positions:
        inside = [v for v in var_list if p + 1 <= v.position <= p + SITE and v.frequency >= min_frequency]
        flags.append(",".join(f"{v.label}({v.frequency:g})" for v in inside))
        in_seed.append(any(p + 12 <= v.position <= p + 18 for v in inside))
    return flags, in_seed


@dataclass
class UserTables:
    """The optional inputs, read and validated before any computing."""

    variants: list[Variant]
    mirna_seeds: dict[str, list[str]]
    known: list[KnownSirna]


def read_user_tables(inputs: SirnaInputs, target: Transcript) -> UserTables:
    """Variants on the target, miRNA seeds and reference siRNAs (each optional)."""
    return UserTables(read_variants(inputs.variants, target.id, len(target.seq)) if inputs.variants else [],
                      read_mirna_seeds(inputs.mirnas) if inputs.mirnas else {},
                      read_known(inputs.known) if inputs.known else [])


@dataclass
class Checks:
    """Everything measured on the candidates besides efficacy, in candidate order."""

    off: OfftargetSearch
    guide_seed: np.ndarray
    pass_seed: np.ndarray
    seed_dg: np.ndarray
    mirna: list[str]
    snps: list[str]
    snp_in_seed: list[bool]
    variant_hits: np.ndarray
    orthologs: dict[str, np.ndarray]
    gc: np.ndarray
    runs: np.ndarray
    immune: list[str]


def run_checks(inputs: SirnaInputs, tables: UserTables, options: SirnaOptions, rules: dict[str, Any],
               target: Transcript, variants: list[Transcript], positions: np.ndarray, guides19: list[str],
               say: Callable[[str], None]) -> Checks:
    """Off-targets, seeds, SNPs, orthologs, transcript variants and sequence rules of every candidate."""
    seq = target.seq
    sites = [seq[p:p + SITE] for p in positions]
    ps = site_patterns(positions, sites)
    off = search_offtargets(ps, inputs.off_targets, excluded_factory(target, variants),
                            int(rules["offtarget"]["max_mismatches"]), options.threads, say)
    guide_seed, pass_seed = seed_match_counts(sites, off.utr_counts)
    seeds = tables.mirna_seeds
    snps, in_seed = snp_flags(tables.variants, positions, float(rules["snp"]["min_frequency"]))
    motifs = rules["immune"]["motifs"]
    return Checks(
        off=off, guide_seed=guide_seed, pass_seed=pass_seed,
        seed_dg=np.array([seed_duplex_dg(g[1:8]) for g in guides19]),
        mirna=[",".join(seeds.get(g[1:8], [])[:3]) for g in guides19],
        snps=snps, snp_in_seed=in_seed,
        variant_hits=np.array([sum(s in v.seq for v in variants) for s in sites], dtype=np.int64),
        orthologs=ortholog_mismatches(ps, inputs.orthologs, len(sites)),
        gc=np.array([gc_percent(s) for s in sites]), runs=np.array([longest_run(s) for s in sites]),
        immune=[immune_motifs(g, s.replace("T", "U"), motifs) for g, s in zip(guides19, sites)])


def penalties(rules: dict[str, Any], c: Checks, n_variants: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                          np.ndarray]:
    """(hard failure, total penalty, GC outside the range, base run too long) per candidate."""
    rk = rules["ranking"]
    k_off = c.off.max_mismatches
    guide_mm, pass_mm = c.off.guide_mm, c.off.pass_mm
    hard_k = int(rk["hard_fail_offtarget_max_mismatches"])
    hard = (guide_mm[:, : hard_k + 1].sum(1) + pass_mm[:, : hard_k + 1].sum(1)) > 0
    gc_out = (c.gc < rules["gc"]["min_percent"]) | (c.gc > rules["gc"]["max_percent"])
    run_bad = c.runs >= int(rules["runs"]["max_same_base"])
    penalty = (rk["penalty_per_seed_utr3_match"] * c.guide_seed
               + rk["penalty_offtarget_2mm"] * (guide_mm[:, 2:].sum(1) + pass_mm[:, 2:].sum(1) if k_off >= 2 else 0)
               + rk["penalty_immune_motif"] * np.array([bool(x) for x in c.immune])
               + rk["penalty_gc_outside"] * gc_out + rk["penalty_run"] * run_bad
               + rk["penalty_snp"] * np.array([bool(x) for x in c.snps])
               + rk["penalty_mirna_seed"] * np.array([bool(x) for x in c.mirna])
               + rk["penalty_missing_variant"] * (n_variants - c.variant_hits))
    return hard, penalty, gc_out, run_bad


def flag_texts(rules: dict[str, Any], c: Checks, hard: np.ndarray, gc_out: np.ndarray, run_bad: np.ndarray,
               n_variants: int) -> list[str]:
    """One readable line of warnings per candidate."""
    hard_k = int(rules["ranking"]["hard_fail_offtarget_max_mismatches"])
    k_off = c.off.max_mismatches
    flags = []
    for i in range(len(hard)):
        f = []
        if hard[i]:
            f.append(f"off-target <= {hard_k} mm")
        if c.off.guide_mm[i, 2:].sum() if k_off >= 2 else 0:
            f.append(f"{int(c.off.guide_mm[i, 2:].sum())} off-target 2-mm (guide)")
        if c.off.pass_mm[i, 2:].sum() if k_off >= 2 else 0:
            f.append(f"{int(c.off.pass_mm[i, 2:].sum())} off-target 2-mm (passenger)")
        if c.immune[i]:
            f.append(f"immune motif {c.immune[i]}")
        if gc_out[i]:
            f.append(f"GC {c.gc[i]:.0f}%")
        if run_bad[i]:
            f.append(f"run of {c.runs[i]}")
        if c.snps[i]:
            f.append(f"SNP {c.snps[i]}" + (" in seed" if c.snp_in_seed[i] else ""))
        if c.mirna[i]:
            f.append(f"miRNA seed {c.mirna[i]}")
        if n_variants and c.variant_hits[i] < n_variants:
            f.append(f"misses {n_variants - c.variant_hits[i]} transcript variant(s)")
        flags.append("; ".join(f))
    return flags


def candidate_table(target: Transcript, positions: np.ndarray, eff: np.ndarray, acc: np.ndarray, c: Checks,
                    strands: tuple[list, list, list[str], list[str]], hard: np.ndarray, score: np.ndarray,
                    flags: list[str]) -> pd.DataFrame:
    """The ranked candidate table (hard failures last, then by score, then position)."""
    duplexes_sense, duplexes_guide, sense_mod, guide_mod = strands
    k_off = c.off.max_mismatches
    table = pd.DataFrame({
        "position": positions + 1, "region": np.array([region_of(target, int(p)) for p in positions], dtype=object),
        "site": [target.seq[p:p + SITE] for p in positions],
        "guide": duplexes_guide, "passenger": duplexes_sense,
        "guide_modified": guide_mod, "passenger_modified": sense_mod,
        "predicted_efficacy": np.round(eff, 4), "accessibility": np.round(acc, 4),
        "gc_percent": np.round(c.gc, 1), "longest_run": c.runs,
        **{f"guide_offtargets_{m}mm": c.off.guide_mm[:, m] for m in range(k_off + 1)},
        **{f"passenger_offtargets_{m}mm": c.off.pass_mm[:, m] for m in range(k_off + 1)},
        "guide_seed_utr3_matches": c.guide_seed, "passenger_seed_utr3_matches": c.pass_seed,
        "seed_duplex_dG": c.seed_dg, "mirna_seed_match": c.mirna, "immune_motifs": c.immune, "snps": c.snps,
        "transcript_variants_hit": c.variant_hits, **c.orthologs,
        "hard_fail": hard, "score": np.round(score, 4), "flags": flags,
    })
    table = table.sort_values(["hard_fail", "score", "position"], ascending=[True, False, True], kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def design_sirnas(inputs: SirnaInputs, options: SirnaOptions = SirnaOptions(),
                  progress: Callable[[str], None] | None = None) -> SirnaResult:
    """Every candidate of the target transcript, scored, checked and ranked."""
    say = progress or (lambda msg: None)
    rules = load_sirna_rules(options.rules_path)
    patterns = load_patterns()
    if options.pattern not in patterns:
        raise InputError(None, f"unknown modification pattern {options.pattern!r}",
                         f"use one of {', '.join(patterns)}")
    pattern = patterns[options.pattern]
    layout = options.layout or pattern.get("layout", "19+2")
    target, variants = choose_target(inputs.target, options.target_id)
    positions = candidate_positions(target.seq, options.avoid, layout)
    if len(positions) == 0:
        raise InputError(inputs.target, "no candidate site left", "narrow the --avoid ranges", record=target.id)
    tables = read_user_tables(inputs, target)
    say(f"{len(positions)} candidate sites on {target.id}")
    eff, acc, guides19 = predict_efficacy(target.seq, positions)
    checks = run_checks(inputs, tables, options, rules, target, variants, positions, guides19, say)
    duplexes = [duplex_strands(target.seq, int(p), layout, options.overhang if layout == "19+2" else "")
                for p in positions]
    strands = ([d.sense for d in duplexes], [d.guide for d in duplexes],
               [modified_notation(d.sense_tokens, "sense", pattern) for d in duplexes],
               [modified_notation(d.guide_tokens, "guide", pattern) for d in duplexes])
    hard, penalty, gc_out, run_bad = penalties(rules, checks, len(variants))
    score = eff - penalty
    flags = flag_texts(rules, checks, hard, gc_out, run_bad, len(variants))
    table = candidate_table(target, positions, eff, acc, checks, strands, hard, score, flags)
    known = locate_known(tables.known, target, table)
    info = design_info(inputs, target, variants, table, layout, pattern, checks.off)
    info["known"] = known
    return SirnaResult(target, variants, table, checks.off.hits_frame(positions), info)


def design_info(inputs: SirnaInputs, target: Transcript, variants: list[Transcript], table: pd.DataFrame,
                layout: str, pattern: dict[str, Any], off: OfftargetSearch) -> dict[str, Any]:
    """What was designed against, with which files, pattern and model (the report's methods section)."""
    from ..models import sirna_efficacy

    return {
        "target": {"id": target.id, "description": target.description, "length": len(target.seq),
                   "cds": [target.cds[0] + 1, target.cds[1]] if target.cds else None, "cds_source": target.cds_source,
                   "gene": target.gene, "transcript_variants": [v.id for v in variants]},
        "candidates": int(len(table)), "layout": layout, "pattern": pattern["name"],
        "pattern_description": pattern["description"], "pattern_source": pattern.get("source", ""),
        "offtarget": {"files": [Path(p).name for p in inputs.off_targets], "transcripts_examined": off.examined,
                      "max_mismatches": off.max_mismatches, "utr_note": off.utr_note()},
        "orthologs": [Path(p).name for p in inputs.orthologs],
        "variants": Path(inputs.variants).name if inputs.variants else None,
        "model": getattr(sirna_efficacy, "MODEL_INFO", {}),
    }


def locate_known(known: list[KnownSirna], target: Transcript, table: pd.DataFrame) -> list[dict[str, Any]]:
    """Where reference siRNAs (e.g. approved drugs, table columns drug, strand, sequence) targeting this
    transcript fall in the ranking: their guide's 19-nt core matched to a candidate site."""
    out = []
    for row in known:
        if row.strand != "antisense":
            continue
        guide = row.sequence
        # the guide's 5'-most 19 nt pair with the candidate's site
        core = reverse_complement(guide[:SITE].replace("U", "T"))
        p = target.seq.find(core)
        if p < 0:
            continue
        match = table[table["position"] == p + 1]
        if not len(match):
            continue
        r = match.iloc[0]
        out.append({"name": row.name, "position": p + 1, "rank": int(r["rank"]),
                    "of": int(len(table)), "percentile": round(100.0 * (1 - (r["rank"] - 1) / len(table)), 1),
                    "predicted_efficacy": float(r["predicted_efficacy"]), "flags": r["flags"]})
    return out
