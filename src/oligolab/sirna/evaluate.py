"""Everything measured on a set of candidates, the same way for designed and for given duplexes: predicted
knock-down (``oligolab.models.sirna_efficacy``), near-perfect and seed off-targets, miRNA-like seeds, SNPs,
transcript-variant coverage, orthologs, sequence rules; then penalties, flags and the ranked table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .candidates import Candidates
from .chemistry import rc_rna
from .figures import gc_percent, immune_motifs, longest_run, seed_duplex_dg
from .index import SITE_TYPES, TranscriptIndex
from .inputs import Variant
from .offtarget import (
    NearPerfect,
    SeedMatches,
    count_offtargets,
    gene_mask,
    hits_frame,
    ortholog_mismatches,
    seed_matches,
)
from .transcripts import SITE, region_of

FLANK = 19  #: nt of context on each side of a site given to the efficacy model


def predict_efficacy(c: Candidates) -> tuple[np.ndarray, np.ndarray]:
    """Predicted knock-down of each duplex as given (guide nt 1-19 with the target's flanks; the transcript folded
    once for accessibility), times its target-pairing factor; and the site accessibility."""
    from ..models.sirna_efficacy import (
        predict_sirna_efficacy,
        site_accessibility,
        site_accessibility_profile,
    )

    seq = c.target.transcript.seq
    if not len(c):
        return np.zeros(0), np.zeros(0)
    acc = np.asarray(site_accessibility(seq))[c.positions]
    profile = site_accessibility_profile(seq)[c.positions]
    padded = "N" * FLANK + seq + "N" * FLANK
    guides = c.guides19
    # the model reads the duplex as designed: its central 19 nt are the guide's own complement (for a perfect
    # match, exactly the transcript's site), flanked by the transcript
    contexts = [
        padded[p : p + FLANK] + rc_rna(g) + padded[p + FLANK + SITE : p + SITE + 2 * FLANK]
        for p, g in zip(c.positions, guides)
    ]
    eff = np.asarray(predict_sirna_efficacy(guides, contexts, accessibility=acc, profile=profile))
    return eff * c.pairing_factor, acc


@dataclass
class Checks:
    """Everything measured on the candidates besides efficacy, in candidate order."""

    hits: pd.DataFrame  #: near-perfect off-target matches
    guide_mm: np.ndarray  #: (n, k + 1) off-target transcripts by mismatches
    pass_mm: np.ndarray
    seeds: SeedMatches
    seed_dg: np.ndarray
    mirna: list[str]
    snps: list[str]
    snp_in_seed: list[bool]
    variant_hits: np.ndarray
    orthologs: dict[str, np.ndarray]
    ortholog_species: dict[str, str]
    gc: np.ndarray
    runs: np.ndarray
    immune: list[str]
    own_rows: np.ndarray | None  #: index rows of the target's gene


def snp_flags(var_list: list[Variant], positions: np.ndarray, min_frequency: float) -> tuple[list[str], list[bool]]:
    """Per candidate: the variants at or above ``min_frequency`` inside its site, and whether one is in the
    seed target (site nt 12-18)."""
    flags, in_seed = [], []
    for p in positions:
        inside = [v for v in var_list if p + 1 <= v.position <= p + SITE and v.frequency >= min_frequency]
        flags.append(",".join(f"{v.label}({v.frequency:g})" for v in inside))
        in_seed.append(any(p + 12 <= v.position <= p + 18 for v in inside))
    return flags, in_seed


def offtarget_checks(
    c: Candidates, index: TranscriptIndex | None, np_hits: NearPerfect | None, k: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, SeedMatches, np.ndarray | None]:
    """Near-perfect hits outside the target's gene, counted per candidate; seed matches."""
    if index is None or np_hits is None:
        empty = pd.DataFrame(
            columns=[
                "candidate",
                "strand",
                "transcript",
                "gene",
                "description",
                "region",
                "position",
                "mismatches",
                "site_position",
            ]
        )
        z = np.zeros((len(c), k + 1), dtype=np.int64)
        return empty, z, z.copy(), seed_matches(None, c.guides19, c.guides19, None), None
    own = gene_mask(index, c.target.transcript, c.target.gene)
    passengers = [p or rc_rna(g) for p, g in zip(c.passengers, c.guides19)]  # no passenger given: the complement
    keep = ~own[np_hits.transcript] if len(np_hits.transcript) else np.zeros(0, dtype=bool)
    hits = hits_frame(index, np_hits, keep, c.positions)
    guide_mm, pass_mm = count_offtargets(hits, len(c), k)
    return hits, guide_mm, pass_mm, seed_matches(index, c.guides19, passengers, own), own


def run_checks(
    c: Candidates,
    rules: dict[str, Any],
    index: TranscriptIndex | None,
    np_hits: NearPerfect | None,
    variants: list[Variant],
    mirna_seeds: dict[str, list[str]],
    orthologs: list[str | Path],
) -> Checks:
    """Off-targets, seeds, SNPs, orthologs, transcript variants and sequence rules of every candidate."""
    k = int(rules["offtarget"]["max_mismatches"])
    hits, guide_mm, pass_mm, seeds, own = offtarget_checks(c, index, np_hits, k)
    guides = c.guides19
    sites = [rc_rna(g).replace("U", "T") for g in guides]  # what the guide pairs with
    snps, in_seed = snp_flags(variants, c.positions, float(rules["snp"]["min_frequency"]))
    motifs = rules["immune"]["motifs"]
    ortho, species = ortholog_mismatches(guides, orthologs)
    return Checks(
        hits=hits,
        guide_mm=guide_mm,
        pass_mm=pass_mm,
        seeds=seeds,
        seed_dg=seed_duplex_dg(guides),
        mirna=[",".join(mirna_seeds.get(g[1:8], [])[:3]) for g in guides],
        snps=snps,
        snp_in_seed=in_seed,
        variant_hits=np.array([sum(s in v.seq for v in c.target.variants) for s in c.sites], dtype=np.int64),
        orthologs=ortho,
        ortholog_species=species,
        gc=gc_percent(sites, SITE),
        runs=longest_run(sites, SITE),
        immune=[
            immune_motifs(g.replace("T", "U"), p.replace("T", "U"), motifs) for g, p in zip(c.guides, c.passengers)
        ],
        own_rows=own,
    )


def penalties(
    rules: dict[str, Any], ch: Checks, n_variants: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(hard failure, total penalty, GC outside the range, base run too long) per candidate."""
    rk = rules["ranking"]
    k_off = ch.guide_mm.shape[1] - 1
    hard_k = int(rk["hard_fail_offtarget_max_mismatches"])
    hard = (ch.guide_mm[:, : hard_k + 1].sum(1) + ch.pass_mm[:, : hard_k + 1].sum(1)) > 0
    gc_out = (ch.gc < rules["gc"]["min_percent"]) | (ch.gc > rules["gc"]["max_percent"])
    run_bad = ch.runs >= int(rules["runs"]["max_same_base"])
    two_mm = ch.guide_mm[:, 2:].sum(1) + ch.pass_mm[:, 2:].sum(1) if k_off >= 2 else 0
    seed = np.minimum(ch.seeds.relative, float(rk["max_relative_seed_burden"]))
    penalty = (
        rk["penalty_per_relative_seed_burden"] * seed
        + rk["penalty_offtarget_2mm"] * two_mm
        + rk["penalty_immune_motif"] * np.array([bool(x) for x in ch.immune])
        + rk["penalty_gc_outside"] * gc_out
        + rk["penalty_run"] * run_bad
        + rk["penalty_snp"] * np.array([bool(x) for x in ch.snps])
        + rk["penalty_mirna_seed"] * np.array([bool(x) for x in ch.mirna])
        + rk["penalty_missing_variant"] * (n_variants - ch.variant_hits)
    )
    return hard, penalty, gc_out, run_bad


def flag_texts(
    rules: dict[str, Any], c: Candidates, ch: Checks, hard: np.ndarray, gc_out: np.ndarray, run_bad: np.ndarray
) -> list[str]:
    """One readable line of warnings per candidate."""
    hard_k = int(rules["ranking"]["hard_fail_offtarget_max_mismatches"])
    n_variants = len(c.target.variants)
    flags = []
    for i in range(len(hard)):
        f = []
        if c.pairing[i]:
            f.append(f"target pairing {c.pairing[i]} (knock-down x{c.pairing_factor[i]:g}, extrapolated)")
        if hard[i]:
            f.append(f"off-target <= {hard_k} mm")
        for name, arr in (("guide", ch.guide_mm), ("passenger", ch.pass_mm)):
            if arr.shape[1] > 2 and arr[i, 2:].sum():
                f.append(f"{int(arr[i, 2:].sum())} off-target 2-mm ({name})")
        if ch.seeds.relative[i] >= 2.0:
            f.append(f"seed burden {ch.seeds.relative[i]:.1f}x typical")
        if ch.immune[i]:
            f.append(f"immune motif {ch.immune[i]}")
        if gc_out[i]:
            f.append(f"GC {ch.gc[i]:.0f}%")
        if run_bad[i]:
            f.append(f"run of {ch.runs[i]}")
        if ch.snps[i]:
            f.append(f"SNP {ch.snps[i]}" + (" in seed" if ch.snp_in_seed[i] else ""))
        if ch.mirna[i]:
            f.append(f"miRNA seed {ch.mirna[i]}")
        if n_variants and ch.variant_hits[i] < n_variants:
            f.append(f"misses {n_variants - ch.variant_hits[i]} transcript variant(s)")
        flags.append("; ".join(f))
    return flags


def conserved_in(orthologs: dict[str, np.ndarray], species: dict[str, str]) -> list[str]:
    """Species whose ortholog holds the site without a mismatch."""
    if not orthologs:
        return []
    n = len(next(iter(orthologs.values())))
    return [",".join(sorted({species[col] for col, v in orthologs.items() if v[i] == "0"})) for i in range(n)]


def candidate_table(
    c: Candidates, eff: np.ndarray, acc: np.ndarray, ch: Checks, hard: np.ndarray, score: np.ndarray, flags: list[str]
) -> pd.DataFrame:
    """The ranked candidate table (hard failures last, then by score, then position)."""
    k_off = ch.guide_mm.shape[1] - 1
    t = c.target.transcript
    seeds = ch.seeds
    table = pd.DataFrame(
        {
            "name": c.names,
            "position": c.positions + 1,
            "region": np.array([region_of(t, int(p)) for p in c.positions], dtype=object),
            "site": c.sites,
            "guide": c.guides,
            "passenger": c.passengers,
            "guide_modified": c.guide_mod,
            "passenger_modified": c.passenger_mod,
            "target_pairing": c.pairing,
            "predicted_efficacy": np.round(eff, 4),
            "accessibility": np.round(acc, 4),
            "gc_percent": np.round(ch.gc, 1),
            "longest_run": ch.runs,
            **{f"guide_offtargets_{m}mm": ch.guide_mm[:, m] for m in range(k_off + 1)},
            **{f"passenger_offtargets_{m}mm": ch.pass_mm[:, m] for m in range(k_off + 1)},
            **{f"guide_seed_{name.replace('-', '_').lower()}": seeds.sites[:, i] for i, name in enumerate(SITE_TYPES)},
            "guide_seed_genes": seeds.genes,
            "guide_seed_burden": np.round(seeds.burden, 3),
            "guide_seed_relative": np.round(seeds.relative, 3),
            "passenger_seed_burden": np.round(seeds.passenger_burden, 3),
            "seed_duplex_dG": ch.seed_dg,
            "mirna_seed_match": ch.mirna,
            "immune_motifs": ch.immune,
            "snps": ch.snps,
            "transcript_variants_hit": ch.variant_hits,
            **ch.orthologs,
            **({"conserved_in": conserved_in(ch.orthologs, ch.ortholog_species)} if ch.orthologs else {}),
            "hard_fail": hard,
            "score": np.round(score, 4),
            "flags": flags,
        }
    )
    table = table.sort_values(["hard_fail", "score", "position"], ascending=[True, False, True], kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)
