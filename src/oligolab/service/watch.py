"""Assay watch: the latest ``oligolab check`` of every shipped published assay on the bundled genomes,
summarised per assay (detected fraction, the oligos losing binding, in which lineage groups, and why), so a
lab sees next to its batches when its kit is at risk."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..check import CheckInputs, CheckOptions, run_check
from .db import WatchResult, utcnow

#: repository data used when the service runs from a source checkout (the README's set-up)
DATA = Path(__file__).resolve().parents[3] / "data" / "sars-cov-2"


@dataclass(frozen=True)
class WatchInputs:
    assays: Path = DATA / "assays" / "diagnostic-rt-pcr-assays.csv"
    genomes: Path = DATA / "pango-consensus-genomes.fasta.zst"
    reference: Path = DATA / "NC_045512.2.fasta"
    alias_key: Path = DATA / "pango-alias-key.json"

    def available(self) -> bool:
        return all(Path(p).exists() for p in (self.assays, self.genomes, self.reference))

    def key(self) -> str:
        """Identifies the inputs: a new genome collection or assay table gives a new watch result."""
        h = hashlib.sha256()
        for p in (self.assays, self.genomes):
            st = Path(p).stat()
            h.update(f"{Path(p).name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:32]


def summarise(out: Path, top: int = 5) -> dict:
    """Per assay: genome counts by call and the oligos losing binding, from a check output folder."""
    assays = pd.read_csv(out / "assay_summary.tsv", sep="\t")
    groups = pd.read_csv(out / "oligo_lineage_groups.tsv", sep="\t")
    escapes = pd.read_csv(out / "escape_mutations.tsv", sep="\t")
    result = {}
    for a in assays.itertuples(index=False):
        g = groups[(groups["assay"] == a.assay) & ((groups["degraded"] + groups["fails"]) > 0)].copy()
        g["lost"] = g["degraded"] + g["fails"]
        oligos = []
        for (oligo, role), rows in g.groupby(["oligo", "role"], sort=False):
            rows = rows.sort_values("lost", ascending=False)
            esc = escapes[(escapes["assay"] == a.assay) & (escapes["oligo"] == oligo)].head(3)
            oligos.append(
                {
                    "oligo": oligo,
                    "role": role,
                    "degraded": int(rows["degraded"].sum()),
                    "fails": int(rows["fails"].sum()),
                    "groups": [
                        f"{r.lineage_group} ({int(r.lost)}/{int(r.genomes)})" for r in rows.head(top).itertuples()
                    ],
                    "mutations": [
                        f"{m.mutation} ({int(m.from_3p)} nt from 3')"
                        + (f" {m.amino_acid}" if isinstance(m.amino_acid, str) else "")
                        + f": {int(m.genomes)} genomes"
                        for m in esc.itertuples()
                    ],
                }
            )
        oligos.sort(key=lambda o: -(o["degraded"] + o["fails"]))
        result[a.assay] = {
            "genomes": int(a.genomes),
            "detected": int(a.detected),
            "at_risk": int(a.at_risk),
            "not_detected": int(a.not_detected),
            "no_data": int(a.no_data),
            "detected_fraction": float(a.detected_fraction),
            "oligos": oligos,
        }
    return result


def run_watch(db: Session, inputs: WatchInputs | None = None) -> WatchResult | None:
    """Check the shipped assays on the bundled genomes and store the summary (None if the data are absent)."""
    inputs = inputs or WatchInputs()
    if not inputs.available():
        return None
    with tempfile.TemporaryDirectory(prefix="oligolab-watch-") as tmp:
        run_check(
            CheckInputs(
                assays=[inputs.assays],
                genomes=[inputs.genomes],
                reference=inputs.reference,
                alias_key=inputs.alias_key if Path(inputs.alias_key).exists() else None,
            ),
            tmp,
            CheckOptions(),
        )
        summary = summarise(Path(tmp))
    row = WatchResult(assay_key=inputs.key(), genomes=Path(inputs.genomes).name, summary=summary, created_at=utcnow())
    db.add(row)
    return row


def latest(db: Session, inputs: WatchInputs | None = None) -> WatchResult | None:
    inputs = inputs or WatchInputs()
    if not inputs.available():
        return None
    return db.scalar(
        select(WatchResult).where(WatchResult.assay_key == inputs.key()).order_by(WatchResult.id.desc()).limit(1)
    )


def for_assay(result: WatchResult | None, watch_assays: list[str]) -> list[dict]:
    """The watch lines of one lab assay: one per watched published assay, with plain-language findings."""
    if result is None:
        return []
    lines = []
    for name in watch_assays:
        s = result.summary.get(name)
        if s is None:
            lines.append({"assay": name, "status": "unknown", "text": "not in the checked assay table", "oligos": []})
            continue
        status = "ok" if s["at_risk"] + s["not_detected"] == 0 else ("bad" if s["not_detected"] else "warn")
        text = (
            f"detected in {s['detected']:,} of {s['genomes']:,} genomes; at risk in {s['at_risk']:,}; "
            f"not detected in {s['not_detected']:,}"
        )
        findings = [
            f"{o['oligo']} ({o['role']}) degraded in {o['degraded']:,} and failing in {o['fails']:,} "
            f"genomes; lineage groups {', '.join(o['groups'])}"
            + (f"; caused by {', '.join(o['mutations'])}" if o["mutations"] else "")
            for o in s["oligos"][:3]
        ]
        short = f"{s['detected']:,}/{s['genomes']:,} detected, {s['at_risk']:,} at risk, {s['not_detected']:,} missed"
        lines.append({"assay": name, "status": status, "text": text, "short": short, "oligos": findings})
    return lines


def fold(lines: list[dict]) -> dict:
    """One line for a lab assay's watch results: the worst status and each published assay's counts."""
    order = {"bad": 3, "warn": 2, "unknown": 1, "ok": 0}
    if not lines:
        return {"status": "na", "text": "no published oligos linked to this assay"}
    worst = max(lines, key=lambda w: order.get(w["status"], 0))["status"]
    return {"status": worst, "text": " · ".join(f"{w['assay']}: {w.get('short', w['text'])}" for w in lines)}
