"""Robustness to what the input does not contain: how likely an unseen genome of the family (the next variant,
the next virus of the species) keeps every oligo of an assay binding.

Per reference column a *rate* estimates the probability that an unseen genome differs from the design
consensus there. It is learnt from the design genomes themselves by leaving each out: for a genome held out,
at each column, how many of the *other* genomes differ from their consensus (``k``), and whether the held-out
genome differs from it. The fraction that differ, per ``k``, is the rate of a column where ``k`` genomes differ.
Sites that already vary are where new genomes differ (among sarbecoviruses known before 2019 a column where one
genome differs is ~5 times, one where five differ ~10 times as likely to differ in a new genome as an invariant
one). The genomes held out are the most novel tenth of the collection (most private mutations: each differs
where all others agree), because the next genome that matters is a new branch, not a sibling of a known one.
With a ``--related`` collection (near neighbours: other species of the family, older strains) the table is
learnt separately for columns where the relatives differ from the design consensus and where they agree, so
sites that vary among relatives count as more mutable, as much as the data say and no more. Position-wise
Shannon entropy of the design genomes is reported beside the rate.

An oligo survives an unseen genome when the new differences under it leave it called ``binds`` by the rule file
(the same :func:`oligolab.sitecall.call_site` the check uses): the probability is summed over every pattern of
up to two new differences (three or more are counted as lost, which is what the shipped rules say for guides
and nearly so for primers); a PAM/PFS base must keep to the enzyme's motif; degenerate (IUPAC) primer positions
only lose when the new base is outside their set. An assay survives when each required primer and at least one
of its guides survive (independent sites).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..knowledge import Enzyme, RuleSet
from ..sequences import IUPAC_MASK
from ..sitecall import BINDS, SiteDifferences, SiteThermo, call_site, rule_group
from .collection import ABSENT, BASE_MASK, DELETED, Collection

MAX_RATE = 0.75  #: a column cannot be more variable than random bases
MAX_NEW_DIFFERENCES = 2  #: patterns of new differences summed exactly (more are counted as lost)
NOVEL_FRACTION = 0.1  #: the held-out genomes that teach the rates: the most novel tenth of the collection


@dataclass
class Conservation:
    """Per reference column of the design collection: rate, entropy, variation among relatives."""

    rate: np.ndarray  #: P(an unseen genome differs from the consensus here)
    observed: np.ndarray  #: fraction of design genomes that differ here
    entropy: np.ndarray  #: Shannon entropy (bits) of the design genomes' bases (A, C, G, T, deletion)
    related_differ: np.ndarray  #: fraction of related genomes differing here (nan without relatives or data)
    novel: float  #: rate of a column where no design genome differs
    novel_related_variable: float  #: ... and where relatives differ (nan without relatives)
    novel_related_conserved: float  #: ... and where relatives agree (nan without relatives)
    n_related: int
    table: np.ndarray = field(default_factory=lambda: np.zeros(0))  #: rate per bin of genomes differing

    def summary(self) -> dict:
        """Figures for the report and summary.json."""
        labels = ["0", "1", "2", "3"] + [f"{2**b}-{2 ** (b + 1) - 1}" for b in range(2, len(self.table) - 2)]
        return {
            "rate_by_genomes_differing": {lab: round(float(r), 5) for lab, r in zip(labels, self.table) if r > 0},
            "novel_mutation_rate": self.novel,
            "related_genomes": self.n_related,
            "novel_rate_where_relatives_differ": self.novel_related_variable,
            "novel_rate_where_relatives_agree": self.novel_related_conserved,
            "columns_variable_among_relatives": int(np.nansum(self.related_differ > 0)),
        }


def _base_counts(bases: np.ndarray) -> np.ndarray:
    """(columns, 5) genomes per A, C, G, T, deletion (unknown and absent not counted)."""
    codes = bases & BASE_MASK
    out = np.zeros((bases.shape[1], 5), dtype=np.int64)
    for k, code in enumerate((0, 1, 2, 3, DELETED)):
        out[:, k] = (codes == code).sum(axis=0)
    return out


def _code_index(bases: np.ndarray) -> np.ndarray:
    """Per genome and column: 0..4 for A, C, G, T, deletion; -1 for no data."""
    codes = bases & BASE_MASK
    idx = np.full(codes.shape, -1, dtype=np.int8)
    for k, code in enumerate((0, 1, 2, 3, DELETED)):
        idx[codes == code] = k
    return idx


def _novel_genomes(idx: np.ndarray, counts: np.ndarray, n_max: int = 100) -> np.ndarray:
    """The most novel tenth of the genomes (at least 3, at most ``n_max``): most private mutations (the only
    genome to differ at a column where every other genome agrees), ties by order."""
    G = idx.shape[0]
    with_data = counts.sum(axis=1)
    single = np.flatnonzero((with_data - counts.max(axis=1) == 1) & (with_data >= 3))
    private = np.zeros(G, dtype=np.int64)
    if len(single):
        cons = counts.argmax(axis=1)[single]
        sub = idx[:, single]
        who = np.argmax((sub != cons[None, :]) & (sub >= 0), axis=0)
        np.add.at(private, who, 1)
    n = min(n_max, max(3, int(np.ceil(NOVEL_FRACTION * G))))
    return np.argsort(-private, kind="stable")[:n]


def _k_bin(k: np.ndarray) -> np.ndarray:
    """Bins of 'genomes differing': 0, 1, 2, 3, then powers of two (4-7, 8-15, ...)."""
    return np.where(k < 4, k, 2 + np.floor(np.log2(np.maximum(k, 1))).astype(np.int64))


def learn_rates(idx: np.ndarray, counts: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Per bin of k (see :func:`_k_bin`): the fraction of held-out genomes differing from the others' consensus
    at columns (of ``columns``) where k others differ; Jeffreys-smoothed, non-decreasing in k."""
    num = np.zeros(64)
    den = np.zeros(64)
    cols = np.flatnonzero(columns)
    for g in _novel_genomes(idx, counts):
        mine = idx[g, cols]
        have = mine >= 0
        other = counts[cols].copy()
        other[np.flatnonzero(have), mine[have]] -= 1
        data = other.sum(axis=1)
        ok = have & (data >= 2)
        k = data - other.max(axis=1)
        b = _k_bin(k[ok])
        np.add.at(den, b, 1)
        np.add.at(num, b, mine[ok] != other.argmax(axis=1)[ok])
    last = int(np.flatnonzero(den)[-1]) + 1 if den.any() else 1
    rate = np.where(den[:last] > 0, (num[:last] + 0.5) / (den[:last] + 1.0), 0.0)
    return np.minimum(np.fmax.accumulate(rate), MAX_RATE)  # non-decreasing; an empty bin takes the one before


def conservation(collection: Collection, related: Collection | None = None) -> Conservation:
    """The rates of a design collection, with near neighbours when given (see the module docstring)."""
    idx = _code_index(collection.bases)
    counts = np.stack([(idx == k).sum(axis=0) for k in range(5)], axis=1)
    with_data = counts.sum(axis=1)
    differ = with_data - counts.max(axis=1)
    observed = np.where(with_data > 0, differ / np.maximum(with_data, 1), 0.0)
    p = counts / np.maximum(with_data, 1)[:, None]
    entropy = -(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=1)
    everywhere = np.ones(len(counts), dtype=bool)
    bins = _k_bin(differ)
    table = learn_rates(idx, counts, everywhere)
    rate = table[np.minimum(bins, len(table) - 1)]
    rel_differ = np.full(len(counts), np.nan)
    n_rel, nv, nc = 0, float("nan"), float("nan")
    if related is not None and related.n:
        n_rel = related.n
        consensus = collection.profile().consensus
        rcodes = related.bases & BASE_MASK
        rdata = (rcodes != ABSENT) & (rcodes != 4) & (rcodes != 5)
        rdiff = rdata & (rcodes != consensus[None, :])
        n_data = rdata.sum(axis=0)
        rel_differ = np.where(n_data > 0, rdiff.sum(axis=0) / np.maximum(n_data, 1), np.nan)
        var = np.nan_to_num(rel_differ) > 0
        t_var, t_cons = learn_rates(idx, counts, var), learn_rates(idx, counts, ~var)
        rate = np.where(var, t_var[np.minimum(bins, len(t_var) - 1)], t_cons[np.minimum(bins, len(t_cons) - 1)])
        nv, nc = float(t_var[0]), float(t_cons[0])
    return Conservation(rate, observed, entropy, rel_differ, float(table[0]), nv, nc, n_rel, table)


# ------------------------------------------------------------------------------------ survival of oligos

_TABLES: dict[tuple, tuple[bool, np.ndarray, np.ndarray]] = {}


def _binds_tables(
    rules: RuleSet, group: str, length: int, seed: tuple[int, int], enzyme: Enzyme | None
) -> tuple[bool, np.ndarray, np.ndarray]:
    """Whether the rule file calls an oligo 'binds' with no new difference, with one at each position, and
    with two (positions in oligo orientation, 0 = 5'-most); computed once per rule set, group and length."""
    key = (id(rules), rules.path, group, length, seed, enzyme)
    if key not in _TABLES:
        _TABLES[key] = _compute_tables(rules, group, length, seed, enzyme)
    return _TABLES[key]


def _compute_tables(
    rules: RuleSet, group: str, length: int, seed: tuple[int, int], enzyme: Enzyme | None
) -> tuple[bool, np.ndarray, np.ndarray]:
    lo, hi = seed

    def binds(pos: tuple[int, ...]) -> bool:
        from_3p = tuple(length - p for p in pos)
        seed_mm = sum(1 for p in pos if lo - 1 <= p <= hi - 1)
        diffs = SiteDifferences(length, len(pos), 0, 0, from_3p, (), seed_mm, True, False)
        return call_site(rules, group, diffs, SiteThermo.none(), enzyme)[0] == BINDS

    one = np.array([binds((i,)) for i in range(length)], dtype=np.float64)
    two = np.zeros((length, length))
    for i in range(length):
        for j in range(i + 1, length):
            two[i, j] = two[j, i] = binds((i, j))
    return binds(()), one, two


def oligo_survival(
    rates: np.ndarray, rules: RuleSet, group: str, seed: tuple[int, int] = (1, 0), enzyme: Enzyme | None = None
) -> np.ndarray | float:
    """P(an unseen genome leaves the oligo called 'binds'), ``rates`` per oligo position (5'->3', core only);
    a 2-D ``rates`` (oligos, positions) gives one probability per row."""
    r = np.clip(np.asarray(rates, dtype=np.float64), 0.0, MAX_RATE)
    single = r.ndim == 1
    r = np.atleast_2d(r)
    b0, b1, b2 = _binds_tables(rules, group, r.shape[1], (seed[0], seed[1]), enzyme)
    p0 = np.prod(1.0 - r, axis=1)
    o = r / (1.0 - r)
    out = p0 * (float(b0) + o @ b1 + 0.5 * np.einsum("ni,ij,nj->n", o, b2, o))
    return float(out[0]) if single else out


def motif_survival(rates: np.ndarray, motif: str) -> float:
    """P(an unseen genome keeps a PAM/PFS within the enzyme's IUPAC motif): a new base at a position is a random
    other base, lost when outside the motif's set there."""
    out = 1.0
    for r, m in zip(rates, motif):
        allowed = bin(IUPAC_MASK[m]).count("1")
        out *= 1.0 - float(r) * (4 - allowed) / 3.0
    return out


def degenerate_rates(
    rates: np.ndarray, observed_outside: np.ndarray, novel: np.ndarray, degenerate: np.ndarray
) -> np.ndarray:
    """Rates under a degenerate primer: at a degenerate position only bases outside its set count (the observed
    fraction outside plus the novel rate)."""
    return np.where(degenerate, np.minimum(MAX_RATE, observed_outside + novel), rates)


def combine(required: list[float], alternatives: list[list[float]]) -> float:
    """P(an assay survives): every required oligo survives and, per role with alternatives (guides), at least one
    of them (independent sites)."""
    p = float(np.prod(required)) if required else 1.0
    for alts in alternatives:
        p *= 1.0 - float(np.prod([1.0 - a for a in alts]))
    return p


def site_columns(start: np.ndarray, strand: np.ndarray, length: int) -> np.ndarray:
    """(sites, length) reference columns of sites [start, start + length), in the oligo's 5'->3' order."""
    cols = start[:, None] + np.arange(length)[None, :]
    return np.where(strand[:, None] == 0, cols, cols[:, ::-1])


def guide_survival(cands, cons: Conservation, rules: RuleSet) -> np.ndarray:
    """P(an unseen genome keeps each candidate guide binding): its spacer by the rule file, its PAM/PFS by the
    enzyme's motif."""
    e = cands.enzyme
    if not len(cands):
        return np.zeros(0)
    L = e.spacer_length
    n_cols = len(cons.rate)
    core = site_columns(np.asarray(cands.core_offset), np.asarray(cands.strand), L)
    spacer = oligo_survival(cons.rate[np.clip(core, 0, n_cols - 1)], rules, rule_group("crRNA", e), e.seed, e)
    c5, c3, motif = e.oligo_context()
    if not motif:
        return np.asarray(spacer)
    col = np.asarray(cands.column)
    strand = np.asarray(cands.strand)
    footprint = site_columns(col, strand, c5 + L + c3)
    ctx = np.concatenate([footprint[:, :c5], footprint[:, c5 + L :]], axis=1)
    rates = cons.rate[np.clip(ctx, 0, n_cols - 1)]
    masks = np.array([bin(IUPAC_MASK[m]).count("1") for m in motif], dtype=np.float64)
    keep = np.prod(1.0 - rates * (4.0 - masks)[None, :] / 3.0, axis=1)
    return np.asarray(spacer) * keep


def primer_site_survival(cons: Conservation, rules: RuleSet, length: int) -> tuple[np.ndarray, np.ndarray]:
    """P(an unseen genome keeps a consensus primer binding) for every primer site of ``length`` nt: (reading
    like the top strand, starting at each column; reading like the bottom strand, starting at each column)."""
    n = len(cons.rate) - length + 1
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    starts = np.arange(n)
    out = []
    for strand in (0, 1):
        cols = site_columns(starts, np.full(n, strand), length)
        out.append(np.asarray(oligo_survival(cons.rate[cols], rules, "primer")))
    return out[0], out[1]
