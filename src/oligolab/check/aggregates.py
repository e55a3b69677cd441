"""Counts kept in memory while per-genome rows stream to disk: genomes per lineage, oligo and call, per lineage,
assay and call, per month, and the mutations under weakened or lost sites (merged across shards by name)."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from ..knowledge import CALLS
from .checker import CAUSES, BatchResult, Checker


class Aggregates:
    """Counts kept in memory while rows stream to disk."""

    def __init__(self, n_oligos: int, n_assays: int):
        self.n_oligos, self.n_assays = n_oligos, n_assays
        self.lineage_index: dict[str, int] = {}
        self.month_index: dict[str, int] = {}
        self.lin_oligo = np.zeros((0, n_oligos, 4), dtype=np.int32)  # genomes per lineage, oligo and call
        self.lin_assay = np.zeros((0, n_assays, 4), dtype=np.int32)
        self.month_assay = np.zeros((0, n_assays, 4), dtype=np.int32)
        self.site_use: Counter[tuple[int, int, int]] = Counter()  #: (site id, lineage idx, call) -> genomes
        self.lost_use: Counter[tuple[int, int, int]] = Counter()  #: (oligo, lineage idx, lost id) -> genomes
        self.mutation_stats: dict[tuple[int, str], dict] = {}  #: filled by finalize(): by oligo and mutation
        self.not_detected_examples: dict[int, list[str]] = defaultdict(list)
        self.oligo_cause = np.zeros((n_oligos, len(CAUSES)), dtype=np.int64)  #: genomes per oligo and cause of its call
        self.site_dates: dict[object, list[str]] = {}  #: site id -> [first, last] collection date
        self.lost_dates: dict[object, list[str]] = {}  #: (oligo, lost id) -> [first, last] collection date

    @staticmethod
    def _index(mapping: dict[str, int], keys: list[str]) -> np.ndarray:
        return np.array([mapping.setdefault(k, len(mapping)) for k in keys], dtype=np.int64)

    @staticmethod
    def _grow(arr: np.ndarray, n: int) -> np.ndarray:
        if arr.shape[0] >= n:
            return arr
        out = np.zeros((max(n, 2 * arr.shape[0]),) + arr.shape[1:], dtype=arr.dtype)
        out[: arr.shape[0]] = arr
        return out

    def add(
        self,
        lineages: list[str],
        months: list[str],
        ids: list[str],
        res: BatchResult,
        dates: list[str] | None = None,
        causes: np.ndarray | None = None,
    ) -> None:
        """Count one checked batch (``dates``: ISO collection dates or '', for when mutations were seen;
        ``causes``: per genome and oligo, the index of what made the call, see :data:`.rows.CAUSES`)."""
        li = self._index(self.lineage_index, lineages)
        if causes is not None:
            n_ol = causes.shape[1]
            np.add.at(self.oligo_cause, (np.tile(np.arange(n_ol), causes.shape[0]), causes.ravel()), 1)
        self.lin_oligo = self._grow(self.lin_oligo, len(self.lineage_index))
        self.lin_assay = self._grow(self.lin_assay, len(self.lineage_index))
        n_gen, n_ol = res.oligo_call.shape
        np.add.at(self.lin_oligo, (np.repeat(li, n_ol), np.tile(np.arange(n_ol), n_gen), res.oligo_call.ravel()), 1)
        n_as = res.assay_call.shape[1]
        np.add.at(self.lin_assay, (np.repeat(li, n_as), np.tile(np.arange(n_as), n_gen), res.assay_call.ravel()), 1)
        has_month = np.array([bool(m) for m in months])
        if has_month.any():
            mi = self._index(self.month_index, [m for m in months if m])
            self.month_assay = self._grow(self.month_assay, len(self.month_index))
            calls = res.assay_call[has_month]
            np.add.at(self.month_assay, (np.repeat(mi, n_as), np.tile(np.arange(n_as), len(mi)), calls.ravel()), 1)
        g_idx, o_idx = np.nonzero((res.oligo_site >= 0) & (res.oligo_call > 0))
        if len(g_idx):
            keys = np.stack([res.oligo_site[g_idx, o_idx], li[g_idx], res.oligo_call[g_idx, o_idx]], axis=1)
            uniq, counts = np.unique(keys, axis=0, return_counts=True)
            for (sid, lin_i, code), n in zip(uniq.tolist(), counts.tolist()):
                self.site_use[(sid, lin_i, code)] += n
            if dates is not None:
                _note_dates(self.site_dates, res.oligo_site[g_idx, o_idx].tolist(), [dates[g] for g in g_idx])
        g_idx, o_idx = np.nonzero(res.lost > 0)
        if len(g_idx):
            keys = np.stack([o_idx, li[g_idx], res.lost[g_idx, o_idx]], axis=1)
            uniq, counts = np.unique(keys, axis=0, return_counts=True)
            for (o, lin_i, lid), n in zip(uniq.tolist(), counts.tolist()):
                self.lost_use[(o, lin_i, lid)] += n
            if dates is not None:
                _note_dates(
                    self.lost_dates,
                    list(zip(o_idx.tolist(), res.lost[g_idx, o_idx].tolist())),
                    [dates[g] for g in g_idx],
                )
        for a in np.flatnonzero((res.assay_call == 3).any(axis=0)):
            ex = self.not_detected_examples[int(a)]
            for g in np.flatnonzero(res.assay_call[:, a] == 3)[: max(0, 20 - len(ex))]:
                ex.append(ids[g])

    def lineages(self) -> list[str]:
        return sorted(self.lineage_index, key=self.lineage_index.__getitem__)

    def months(self) -> list[str]:
        return sorted(self.month_index, key=self.month_index.__getitem__)

    def finalize(self, checker: Checker) -> None:
        """Turn site and lost-site counts (engine ids, local to this process) into mutation counts by name,
        so that aggregates of several shards can be merged."""
        lin_names = self.lineages()
        stats = self.mutation_stats
        for (sid, li, call), n in self.site_use.items():
            oi = int(checker.engine.sites.pattern[sid]) // 2
            for name, from_3p, refpos in checker.mutations(sid):
                add_mutation(stats, oi, name, from_3p, refpos, CALLS[call], lin_names[li], n, self.site_dates.get(sid))
        for (oi, li, lid), n in self.lost_use.items():
            for name, from_3p, refpos in checker.lost[lid]:
                add_mutation(
                    stats, oi, name, from_3p, refpos, "fails", lin_names[li], n, self.lost_dates.get((oi, lid))
                )
        self.site_use.clear()
        self.lost_use.clear()
        self.site_dates.clear()
        self.lost_dates.clear()

    def merge(self, other: Aggregates) -> None:
        """Add another shard's (finalized) counts; lineages and months are matched by name."""
        self.oligo_cause += other.oligo_cause
        li = self._index(self.lineage_index, other.lineages())
        self.lin_oligo = self._grow(self.lin_oligo, len(self.lineage_index))
        self.lin_assay = self._grow(self.lin_assay, len(self.lineage_index))
        np.add.at(self.lin_oligo, li, other.lin_oligo[: len(li)])
        np.add.at(self.lin_assay, li, other.lin_assay[: len(li)])
        if other.month_index:
            mi = self._index(self.month_index, other.months())
            self.month_assay = self._grow(self.month_assay, len(self.month_index))
            np.add.at(self.month_assay, mi, other.month_assay[: len(mi)])
        for key, st in other.mutation_stats.items():
            mine = self.mutation_stats.get(key)
            if mine is None:
                self.mutation_stats[key] = {**st, "lineages": Counter(st["lineages"])}
            else:
                for f in ("genomes", "degraded", "fails", "no_data"):
                    mine[f] += st[f]
                mine["lineages"].update(st["lineages"])
                _widen(mine, st.get("first_seen", ""), st.get("last_seen", ""))
        for a, ex in other.not_detected_examples.items():
            mine_ex = self.not_detected_examples[a]
            mine_ex.extend(ex[: max(0, 20 - len(mine_ex))])


def add_mutation(
    stats: dict,
    oi: int,
    name: str,
    from_3p: int,
    refpos: int,
    call: str,
    lineage: str,
    n: int,
    dates: list[str] | None = None,
) -> None:
    s = stats.get((oi, name))
    if s is None:
        s = stats[(oi, name)] = {
            "genomes": 0,
            "degraded": 0,
            "fails": 0,
            "no_data": 0,
            "from_3p": from_3p,
            "refpos": refpos,
            "lineages": Counter(),
            "first_seen": "",
            "last_seen": "",
        }
    s["genomes"] += n
    s[call.replace(" ", "_")] += n
    s["lineages"][lineage] += n
    if dates:
        _widen(s, dates[0], dates[1])


def _widen(stats: dict, first: str, last: str) -> None:
    """Extend a mutation's first and last collection dates ('' = unknown)."""
    if first and (not stats["first_seen"] or first < stats["first_seen"]):
        stats["first_seen"] = first
    if last and last > stats["last_seen"]:
        stats["last_seen"] = last


def _note_dates(seen: dict[object, list[str]], keys: list, dates: list[str]) -> None:
    """Track the first and last non-empty date per key."""
    for key, d in zip(keys, dates):
        if not d:
            continue
        span = seen.get(key)
        if span is None:
            seen[key] = [d, d]
        elif d < span[0]:
            span[0] = d
        elif d > span[1]:
            span[1] = d
