"""Exclusivity: every oligo site in off-target collections (near neighbours, human sequences) and what the
assays could form there (an amplicon, a detection, a guide binding)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..assays import Assay
from ..engine import Engine, pack_batch
from ..knowledge import CALLS, amplification
from ..sequences import read_fasta
from .checker import Checker
from .sites import SiteBook


def exclusivity(checker: Checker, paths: list[str | Path]) -> tuple[Any, Any]:
    """Every site of every oligo in the off-target collections, and the amplicons/detections the assays could
    form there. Returns (sites DataFrame, assay outcomes DataFrame)."""
    import pandas as pd

    site_rows, assay_rows = [], []
    limits = amplification()
    for path in paths:
        records = list(read_fasta(path))
        engine = Engine(
            checker.patterns, checker.options.max_mismatches, checker.options.max_gaps, threads=checker.options.threads
        )
        try:
            codes, ends = pack_batch([r.codes() for r in records])
            hits = engine.search_codes(codes, ends)
        finally:
            engine.close()
        book = SiteBook(checker.oligos, engine.sites, checker.rules)
        per_record: dict[int, list[tuple[int, int, int, int, int]]] = defaultdict(list)
        for g, p, sid in zip(hits.genome, hits.pos, hits.site):
            f = book.facts(int(sid))
            c = book.call(int(sid))
            so = checker.oligos[f.oligo]
            rec = records[int(g)]
            site_rows.append(
                {
                    "collection": Path(path).name,
                    "record": rec.id,
                    "description": rec.description,
                    "assay": so.oligo.assay,
                    "oligo": so.name,
                    "role": so.role,
                    "call": CALLS[c[0]],
                    "strand": f.strand,
                    "start": int(p) + 1,
                    "end": int(p) + f.span,
                    "mismatches": f.mismatches,
                    "gaps": f.gaps,
                    "mismatch_from_3p": ",".join(map(str, f.mm_from_3p)),
                    "target": f.target,
                    "tm_C": c[2],
                    "tm_drop_C": c[4],
                }
            )
            per_record[int(g)].append((f.oligo, int(p), int(p) + f.span, 0 if f.strand == "+" else 1, c[0]))
        for g, sites in per_record.items():
            rec = records[g]
            by_oligo: dict[int, list] = defaultdict(list)
            for s in sites:
                if s[4] <= 1:  # binds or degraded: could take part in a reaction
                    by_oligo[s[0]].append(s)
            for assay, members in zip(checker.assays.assays, checker.assay_members):
                outcome = offtarget_assay(assay, members, by_oligo, limits)
                if outcome is not None:
                    assay_rows.append(
                        {
                            "collection": Path(path).name,
                            "record": rec.id,
                            "description": rec.description,
                            "assay": assay.name,
                            **outcome,
                        }
                    )
    site_cols = [
        "collection",
        "record",
        "description",
        "assay",
        "oligo",
        "role",
        "call",
        "strand",
        "start",
        "end",
        "mismatches",
        "gaps",
        "mismatch_from_3p",
        "target",
        "tm_C",
        "tm_drop_C",
    ]
    assay_cols = ["collection", "record", "description", "assay", "outcome", "amplicon_start", "amplicon_end", "oligos"]
    sites_df = pd.DataFrame(site_rows, columns=site_cols)
    assays_df = pd.DataFrame(assay_rows, columns=assay_cols)
    if len(sites_df):
        sites_df = sites_df.sort_values(["collection", "record", "assay", "oligo", "start"], kind="stable")
    if len(assays_df):
        assays_df = assays_df.sort_values(["collection", "record", "assay"], kind="stable")
    return sites_df.reset_index(drop=True), assays_df.reset_index(drop=True)


def offtarget_assay(
    assay: Assay, members: dict[str, list[int]], by_oligo: dict[int, list], limits: dict
) -> dict | None:
    """What an assay could do on an off-target record: 'detected' (amplicon plus probe/guide), 'amplicon'
    (primers could amplify), 'guide binds' (guide-only assay), or None."""
    kind = assay.kind
    max_amp = assay.max_amplicon or limits.get("lamp" if kind == "lamp" else "pcr", {}).get("max_amplicon", 2000)

    def sites_of(role: str) -> list:
        return [s for o in members.get(role, []) for s in by_oligo.get(o, [])]

    fwd, rev = sites_of("forward"), sites_of("reverse")
    signal_roles = [r for r in ("probe", "crRNA") if r in members]
    best = None
    for f in fwd:
        for r in rev:
            if f[3] == r[3]:
                continue
            lo, hi = (f[1], r[2]) if f[3] == 0 else (r[1], f[2])
            if not (0 < hi - lo <= max_amp):
                continue
            inside = all(any(lo <= s[1] and s[2] <= hi for s in sites_of(role)) for role in signal_roles)
            cand = ("detected" if signal_roles and inside else "amplicon", lo, hi)
            if best is None or (cand[0] == "detected" and best[0] != "detected"):
                best = cand
    if best is not None:
        used = sorted({so for role in members for so in members[role] if by_oligo.get(so)})
        return {
            "outcome": best[0] if signal_roles else "amplicon",
            "amplicon_start": best[1] + 1,
            "amplicon_end": best[2],
            "oligos": len(used),
        }
    if kind == "lamp" or (kind == "crispr" and not fwd and not rev):
        needed = [r for r in members if r not in ("LF", "LB")]
        if all(sites_of(r) for r in needed):
            starts = [s[1] for r in needed for s in sites_of(r)]
            ends = [s[2] for r in needed for s in sites_of(r)]
            if max(ends) - min(starts) <= max(max_amp, 1):
                return {
                    "outcome": "guide binds" if kind == "crispr" else "amplicon",
                    "amplicon_start": min(starts) + 1,
                    "amplicon_end": max(ends),
                    "oligos": len(needed),
                }
    return None
