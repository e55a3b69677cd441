"""Candidates: the duplexes of a run on one target, whether designed (every site of the transcript) or given
(`oligolab sirna score`: a team's, a competitor's or a drug's duplexes, located on the target).

A given duplex is placed where its guide nt 1-19 pair best with the target (fewest non-Watson-Crick pairs, at most
``MAX_LOCATE_MM``); every guide position is then classed as a Watson-Crick pair, a G·U wobble or a mismatch. Guide
position 1 sits in Argonaute's MID pocket and does not pair with the target (Ma et al. 2005 Nature 434:666;
Frank et al. 2010 Nature 465:818), so a drug such as givosiran, whose 5'-terminal U faces a G, is scored as itself.
The efficacy factor of other positions comes from ``knowledge/sirna-rules.toml`` ``[target_pairing]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..sequences import encode
from .chemistry import DecodedStrand, modified_notation, rc_rna, residue_styles
from .targets import Target
from .transcripts import SITE

MAX_LOCATE_MM = 4  #: non-Watson-Crick pairs over guide nt 1-19 for a given duplex to count as on the target
_PAIRS = {("A", "U"), ("U", "A"), ("G", "C"), ("C", "G")}
_WOBBLES = {("G", "U"), ("U", "G")}


@dataclass
class Candidates:
    """Duplexes on one target, in input order."""

    target: Target
    positions: np.ndarray  #: 0-based start of the 19-nt site that guide nt 1-19 pair with
    guides: list[str]  #: RNA letters 5'->3', whole strand (a dT overhang written T)
    passengers: list[str]
    guide_mod: list[str]
    passenger_mod: list[str]
    names: list[str]
    pairing: list[str]  #: non-Watson-Crick guide positions ('' = all paired)
    pairing_factor: np.ndarray  #: multiplier of the predicted knock-down for those positions (1 = none)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def guides19(self) -> list[str]:
        """Guide nt 1-19, the strand's part the efficacy model and the seed rules read."""
        return [g[:SITE].replace("T", "U") for g in self.guides]

    @property
    def sites(self) -> list[str]:
        """The 19-nt target sites on the transcript (DNA letters)."""
        seq = self.target.transcript.seq
        return [seq[p : p + SITE] for p in self.positions]


def candidate_positions(seq: str, avoid: list[tuple[int, int]], layout: str) -> np.ndarray:
    """0-based starts of the sites that hold only A/C/G/T, outside the avoided ranges (and with 4 nt upstream
    in the 21/23 layout, whose guide overhang pairs there)."""
    codes = encode(seq)
    n = len(seq) - SITE + 1
    positions = np.arange(n)
    bad = np.concatenate([[0], np.cumsum(codes > 3)])
    keep = (bad[SITE:] - bad[:-SITE]) == 0
    for lo, hi in avoid:  # 1-based inclusive ranges
        keep &= ~((positions + SITE > lo - 1) & (positions < hi))
    if layout == "21/23":
        keep &= positions >= 4
    return positions[keep]


def design_candidates(
    target: Target, positions: np.ndarray, layout: str, overhang: str, pattern: dict[str, Any]
) -> Candidates:
    """Every site at ``positions`` as a duplex in ``layout`` (see :func:`.chemistry.duplex_strands`), written in
    ``pattern``'s chemistry; strands cut from the transcript directly (vectorised over the sites)."""
    rna = target.transcript.seq.replace("T", "U")
    comp = str.maketrans("ACGU", "UGCA")
    if layout == "21/23":
        sense = [rna[p - 2 : p + SITE] for p in positions]
        guide = [rna[p - 4 : p + SITE].translate(comp)[::-1] for p in positions]
        sense_tokens: list = sense
        guide_tokens: list = guide
    else:
        core = [rna[p : p + SITE] for p in positions]
        tail = ["dT", "dT"] if overhang == "dTdT" else list(overhang.replace("T", "U"))
        sense_tokens = [list(c) + tail for c in core]
        guide_tokens = [list(c.translate(comp)[::-1]) + tail for c in core]
        sense = ["".join(t if t != "dT" else "T" for t in x) for x in sense_tokens]
        guide = ["".join(t if t != "dT" else "T" for t in x) for x in guide_tokens]
    label = target.gene or target.transcript.id
    return Candidates(
        target,
        positions,
        guide,
        sense,
        notations(guide_tokens, "guide", pattern),
        notations(sense_tokens, "sense", pattern),
        [f"{label}-{p + 1}" for p in positions],
        [""] * len(positions),
        np.ones(len(positions)),
    )


def notations(strands: list, strand: str, pattern: dict[str, Any]) -> list[str]:
    """The modification notation of many strands of one length and layout (the styles are worked out once)."""
    if not strands:
        return []
    n = len(strands[0])
    if any(len(s) != n for s in strands):
        return [modified_notation(s, strand, pattern) for s in strands]
    styles, ps_after = residue_styles(pattern, strand, n)
    plain = all(st in "for" for st in styles)
    suffix = pattern.get("sense_3prime", "") if strand == "sense" else ""
    out = []
    for tokens in strands:
        if not plain or "dT" in tokens:
            out.append(modified_notation(list(tokens), strand, pattern))
            continue
        parts = [t + "f" if st == "f" else t.lower() if st == "o" else t for t, st in zip(tokens, styles)]
        for i in sorted(ps_after, reverse=True):
            parts.insert(i, "s")
        out.append("".join(parts) + suffix)
    return out


def best_site(target_codes: np.ndarray, guide19: str) -> tuple[int, int]:
    """(0-based site start, mismatches) of the best ungapped placement of a guide's 19-nt target."""
    want = encode(rc_rna(guide19).replace("U", "T"))
    if len(target_codes) < SITE:
        return -1, SITE
    windows = np.lib.stride_tricks.sliding_window_view(target_codes, SITE)
    mm = (windows != want).sum(1)
    p = int(np.argmin(mm))
    return p, int(mm[p])


def pair_classes(seq: str, pos: int, guide: str) -> list[tuple[int, str, str, str]]:
    """Non-Watson-Crick guide positions: (position, guide base, target base, 'wobble' or 'mismatch'); guide
    position i (1-based) faces transcript nt pos + 19 - i."""
    out = []
    for i, g in enumerate(guide, 1):
        j = pos + SITE - i
        if j < 0 or j >= len(seq) or g == "T" and i > SITE:  # past the transcript, or a dT overhang
            continue
        t = seq[j].replace("T", "U")
        g = "U" if g == "T" else g
        if (g, t) in _PAIRS:
            continue
        out.append((i, g, t, "wobble" if (g, t) in _WOBBLES else "mismatch"))
    return out


def pairing_factor(classes: list[tuple[int, str, str, str]], rules: dict[str, Any]) -> float:
    """Product of the rule file's factors for each non-Watson-Crick pair of guide nt 1-19 (overhang pairs
    do not count: the overhang need not pair)."""
    tp = rules["target_pairing"]
    factor = 1.0
    for i, _, _, kind in classes:
        for region in tp["regions"]:
            if region["first"] <= i <= region["last"]:
                factor *= float(region[kind])
                break
    return factor


def pairing_text(classes: list[tuple[int, str, str, str]]) -> str:
    """'1:U·G wobble; 10:A·C mismatch' (guide base · target base)."""
    return "; ".join(f"{i}:{g}·{t} {kind}" for i, g, t, kind in classes)


@dataclass
class GivenDuplex:
    """A duplex read from a file for scoring."""

    name: str
    guide: DecodedStrand
    passenger: DecodedStrand
    guide_text: str
    passenger_text: str
    line: int


def locate_duplexes(target: Target, duplexes: list[GivenDuplex], rules: dict[str, Any]) -> tuple[Candidates, list[str]]:
    """The duplexes whose guide pairs with ``target`` (at most ``MAX_LOCATE_MM`` non-Watson-Crick pairs over
    nt 1-19), as candidates; and the names of those that do not."""
    seq = target.transcript.seq
    codes = encode(seq)
    keep: list[tuple[GivenDuplex, int, list]] = []
    missing = []
    for d in duplexes:
        p, mm = best_site(codes, d.guide.bases[:SITE])
        if p < 0 or mm > MAX_LOCATE_MM:
            missing.append(d.name)
            continue
        keep.append((d, p, pair_classes(seq, p, d.guide.bases)))
    core = [[c for c in classes if c[0] <= SITE] for _, _, classes in keep]
    return Candidates(
        target,
        np.array([p for _, p, _ in keep], dtype=np.int64),
        [d.guide.bases for d, _, _ in keep],
        [d.passenger.bases for d, _, _ in keep],
        [d.guide_text if d.guide.modified else "" for d, _, _ in keep],
        [d.passenger_text if d.passenger.modified or d.passenger.ligand else "" for d, _, _ in keep],
        [d.name for d, _, _ in keep],
        [pairing_text(classes) for _, _, classes in keep],
        np.array([pairing_factor(c, rules) for c in core], dtype=float),
    ), missing
