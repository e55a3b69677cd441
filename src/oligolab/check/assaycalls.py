"""Assay calls per genome from the oligo calls: the best alternative of each required role, the worst role
decides; then the sites must form an amplicon (primers facing each other, probe or guide inside, LAMP primers
in order on their strands)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from ..assays import Assay, AssaySet
from ..engine import SiteTable
from ..knowledge import CALLS, amplification
from .oligos import SearchOligo

NOT_DETECTED = 3  #: assay code of 'not detected' (oligo codes 0..3 map onto assay codes 0..3 one to one)
OPTIONAL_ROLES = ("LF", "LB")  #: loop primers: losing them slows LAMP down, it does not stop it
LAMP_ORDER = ("F3", "F2", "F1c", "B1c", "B2", "B3")
#: per genome: reason id of a geometry failure (0 = none), amplicon formed, amplicon start, amplicon end
Geometry = tuple[np.ndarray, np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def assay_members(assays: AssaySet, oligos: list[SearchOligo]) -> list[dict[str, list[int]]]:
    """Per assay: its search-oligo indices by role."""
    index: dict[int, list[int]] = {id(o.oligo): [] for o in oligos}
    for i, so in enumerate(oligos):
        index[id(so.oligo)].append(i)
    members = []
    for a in assays.assays:
        roles: dict[str, list[int]] = defaultdict(list)
        for o in a.oligos:
            for i in index[id(o)]:
                roles[oligos[i].role].append(i)
        members.append(dict(roles))
    return members


def max_amplicon(assay: Assay) -> int:
    """Longest amplicon (or LAMP region) the assay's chemistry makes, nt."""
    limits = amplification()
    return assay.max_amplicon or limits.get("lamp" if assay.kind == "lamp" else "pcr", {}).get("max_amplicon", 2000)


class AssayCaller:
    """Calls assays in a batch of genomes; reason texts are stored through ``reason_id``."""

    def __init__(
        self,
        assays: AssaySet,
        oligos: list[SearchOligo],
        members: list[dict[str, list[int]]],
        reason_id: Callable[[str], int],
    ):
        self.assays = assays
        self.oligos = oligos
        self.members = members
        self.reason_id = reason_id
        self._role_reason: dict[tuple, int] = {}

    def __call__(
        self, call: np.ndarray, best_site: np.ndarray, best_pos: np.ndarray, sites: SiteTable
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(assay codes, reason ids, amplicon start/end) per genome and assay."""
        n_gen = call.shape[0]
        n_as = len(self.assays.assays)
        out = np.zeros((n_gen, n_as), dtype=np.int8)
        reason = np.zeros((n_gen, n_as), dtype=np.int32)
        amplicon = np.full((n_gen, n_as, 2), -1, dtype=np.int64)
        safe = np.maximum(best_site, 0)
        strand = np.where(best_site >= 0, sites.pattern[safe] % 2, -1)
        end = np.where(best_site >= 0, best_pos + sites.span[safe], -1)
        for ai, (assay, members) in enumerate(zip(self.assays.assays, self.members)):
            codes, pick = self._role_calls(call, members, reason[:, ai])

            def take(role: str, pick: dict[str, np.ndarray] = pick) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                o = pick[role]
                rows = np.arange(n_gen)
                return best_pos[rows, o], end[rows, o], strand[rows, o]

            bad_geom, ok, lo, hi = self._geometry(assay, members, pick, take, codes)
            failed = bad_geom > 0
            codes = np.where(failed, NOT_DETECTED, codes).astype(np.int8)
            reason[failed, ai] = bad_geom[failed]
            if lo is not None and hi is not None:
                amplicon[ok, ai, 0] = lo[ok]
                amplicon[ok, ai, 1] = hi[ok]
            out[:, ai] = codes
        return out, reason, amplicon

    def _role_calls(
        self, call: np.ndarray, members: dict[str, list[int]], reason: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Worst of the roles' best alternatives per genome, the oligo picked for each role, and the reason
        (written into ``reason``) naming the oligos that decided."""
        n_gen = call.shape[0]
        rows = np.arange(n_gen)
        optional = [r for r in members if r in OPTIONAL_ROLES]
        required = [r for r in members if r not in optional]
        group_call, pick = {}, {}
        for role in required + optional:
            idx = np.array(members[role])
            sub = call[:, idx]
            best = np.argmin(sub, axis=1)
            group_call[role] = sub[rows, best]
            pick[role] = idx[best]
        worst = np.zeros(n_gen, dtype=np.int8)
        for role in required:
            worst = np.maximum(worst, group_call[role])
        for role in optional:
            worst = np.maximum(worst, np.minimum(group_call[role], 1))
        for g in np.flatnonzero(worst > 0):
            bad = tuple(int(pick[r][g]) for r in required + optional if group_call[r][g] == worst[g])
            key = (int(worst[g]), bad)
            rid = self._role_reason.get(key)
            if rid is None:
                rid = self._role_reason[key] = self.reason_id(
                    f"{CALLS[worst[g]]}: {', '.join(self.oligos[o].name for o in bad)}"
                )
            reason[g] = rid
        return worst, pick

    def _geometry(
        self,
        assay: Assay,
        members: dict[str, list[int]],
        pick: dict[str, np.ndarray],
        take: Callable,
        codes: np.ndarray,
    ) -> Geometry:
        """(reason id of a geometry failure per genome (0 = none), amplicon formed, amplicon start, end)."""
        kind = assay.kind
        n_gen = len(codes)
        if kind in ("pcr", "crispr") and "forward" in members and "reverse" in members:
            return self._pcr_geometry(assay, members, pick, take, codes)
        if kind in ("lamp", "crispr") and {"F3", "B3", "F2", "B2", "F1c", "B1c"} <= set(members):
            return self._lamp_geometry(assay, members, take, codes)
        return np.zeros(n_gen, dtype=np.int32), np.zeros(n_gen, dtype=bool), None, None

    def _pcr_geometry(
        self,
        assay: Assay,
        members: dict[str, list[int]],
        pick: dict[str, np.ndarray],
        take: Callable,
        codes: np.ndarray,
    ) -> Geometry:
        max_amp = max_amplicon(assay)
        bad_geom = np.zeros(len(codes), dtype=np.int32)
        fp, fe, fs = take("forward")
        rp, re_, rs = take("reverse")
        have = (fp >= 0) & (rp >= 0) & (codes < NOT_DETECTED)
        lo = np.where(fs == 0, fp, rp)
        hi = np.where(fs == 0, re_, fe)
        same = have & (fs == rs)
        facing = np.where(fs == 0, fp <= rp, rp <= fp) & (hi > lo) & (hi - lo <= max_amp)
        bad_geom[same] = self.reason_id("forward and reverse primers bind the same strand")
        bad_geom[have & ~same & ~facing & (bad_geom == 0)] = self.reason_id(
            f"primers do not face each other within {max_amp} nt"
        )
        for role in ("probe", "crRNA"):
            if role in members:
                pp, pe, ps = take(role)
                outside = have & (pp >= 0) & ~((pp >= lo) & (pe <= hi)) & (bad_geom == 0)
                bad_geom[outside] = self.reason_id(f"{role} site outside the amplicon")
        t7 = self._t7_role(members)
        if "crRNA" in members and t7 is not None:
            pp, pe, ps = take("crRNA")
            t7_strand = take(t7)[2]
            rna = np.array(
                [self.oligos[o].enzyme is not None and self.oligos[o].enzyme.target == "rna" for o in pick["crRNA"]]
            )
            wrong = have & (pp >= 0) & rna & (ps == t7_strand) & (bad_geom == 0)
            bad_geom[wrong] = self.reason_id("the guide does not pair with the T7 transcript")
        return bad_geom, have & (bad_geom == 0), lo, hi

    def _lamp_geometry(
        self, assay: Assay, members: dict[str, list[int]], take: Callable, codes: np.ndarray
    ) -> Geometry:
        max_amp = max_amplicon(assay)
        bad_geom = np.zeros(len(codes), dtype=np.int32)
        parts = [take(r) for r in LAMP_ORDER]
        have = np.all([p[0] >= 0 for p in parts], axis=0) & (codes < NOT_DETECTED)
        top = parts[0][2]
        expected = [top, top, 1 - top, top, 1 - top, 1 - top]
        strands_ok = np.all([p[2] == e for p, e in zip(parts, expected)], axis=0)
        keys = [np.where(top == 0, p[0], -p[1]) for p in parts]
        ordered = np.all([keys[i] <= keys[i + 1] for i in range(5)], axis=0)
        lo = np.min([p[0] for p in parts], axis=0)
        hi = np.max([p[1] for p in parts], axis=0)
        bad_geom[have & ~strands_ok] = self.reason_id("LAMP primers are not on the expected strands")
        bad_geom[have & strands_ok & ~ordered] = self.reason_id("LAMP primers are out of order")
        bad_geom[have & (bad_geom == 0) & (hi - lo > max_amp)] = self.reason_id(f"LAMP region longer than {max_amp} nt")
        if "crRNA" in members:
            pp, pe, ps = take("crRNA")
            outside = have & (pp >= 0) & ~((pp >= lo) & (pe <= hi)) & (bad_geom == 0)
            bad_geom[outside] = self.reason_id("guide site outside the LAMP amplicon")
        return bad_geom, have & (bad_geom == 0), lo, hi

    def _t7_role(self, members: dict[str, list[int]]) -> str | None:
        """The primer role carrying a T7 promoter tail (its strand is the transcript's sense), if any."""
        for role in ("forward", "reverse"):
            if role in members and any(self.oligos[o].oligo.tail for o in members[role]):
                return role
        return None
