"""`oligolab design --rescue`: keep an assay a laboratory already runs and redesign only the oligo(s) that
variants escape, against the collection.

1. `check` (its Checker, over every genome) calls each oligo of each assay; an oligo *escapes* when it does not
   bind in at least ``min_escape`` genomes where the assay is not detected.
2. For each escaping oligo, candidates of the same role, strand and kind are made on the collection (the design's
   primer machinery: consensus sequence, composition and Tm limits, the check's site rule per genome variant):
   * **shift**: the site moved up to ``max_shift`` nt and resized by up to 4 nt, keeping the oligo's Tm within
     -2/+3 °C of the original and the assay's layout (primers outside the probe, facing each other);
   * **degenerate**: the original site (or the best shift) with IUPAC codes where the missed genomes carry other
     bases, the product of the allowed bases within ``max_degeneracy``;
   * **added oligo**: the original kept, plus a second oligo of the same role with the escaping genomes' variant.
   Candidates are ranked by the genomes in which the whole assay would then have every role bound, then by fewer
   changes (shift, degenerate, added oligo).
3. The best candidates are checked by `check` itself; the rescue that detects the most genomes is kept only if it
   detects more than the original. Escaping oligos are handled one after another (most genomes lost first).

Primers and probes are rescued; a guide or a LAMP inner primer that escapes is reported, not redesigned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..assays import Assay, AssaySet, Oligo, read_assays
from ..check import Checker, CheckOptions
from ..errors import InputError
from ..knowledge import RuleSet
from ..sequences import IUPAC_MASK, MASK_IUPAC, SeqRecord, reverse_complement
from ..sitecall import BINDS
from ..thermo import Conditions, perfect_duplex
from .collection import Collection
from .evaluate import CheckCoverage, check_coverage
from .primers import PrimerFactory, design_table, longest_run

RESCUABLE = ("forward", "reverse", "probe", "F3", "B3", "LF", "LB")
KIND_ORDER = {"shift": 0, "degenerate": 1, "added oligo": 2}


@dataclass
class Site:
    """Where an oligo binds the reference: columns [start, end), strand (0: reads like the top strand)."""

    start: int
    end: int
    strand: int


@dataclass
class Candidate:
    kind: str  #: shift, degenerate, added oligo
    oligos: list[Oligo]  #: the role's oligos after the change (alternatives)
    binds: np.ndarray  #: per genome: the role binds (some alternative)
    change: str  #: what was done, in words
    assay_binds: int = 0  #: genomes where every role of the assay would bind


@dataclass
class RescuedAssay:
    """An assay before and after rescue, with the check's counts of both."""

    original: Assay
    rescued: Assay
    changes: list[str] = field(default_factory=list)
    escaping: list[str] = field(default_factory=list)  #: oligos that escaped
    not_rescued: list[str] = field(default_factory=list)  #: escaping oligos no candidate improved (and why)
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)


def oligo_sites(assay: Assay, reference: SeqRecord, options: CheckOptions) -> dict[str, Site]:
    """Reference site of every oligo of an assay (by the check's own search); FIP/BIP are left out."""
    checker = Checker(AssaySet([assay]), reference=reference, options=options)
    try:
        out = {}
        for so, ref in zip(checker.oligos, checker.ref_sites):
            if ref is not None and not so.part and so.role in RESCUABLE:
                out[so.name] = Site(ref.start, ref.end, 0 if ref.strand == "+" else 1)
        return out
    finally:
        checker.close()


def _group(role: str) -> str:
    return "probe" if role == "probe" else "primer"


def _tm(seq: str, cond: Conditions) -> float:
    return perfect_duplex(seq, cond).tm_C


def _layout_ok(role: str, site: Site, others: dict[str, tuple[str, Site]]) -> bool:
    """The moved oligo keeps the assay's layout: no overlap with another oligo; a forward primer before, a
    reverse primer after, the probe."""
    for other_role, s in others.values():
        if site.start < s.end and s.start < site.end:
            return False
        if other_role == "probe" and role in ("forward", "F3") and site.end > s.start:
            return False
        if other_role == "probe" and role in ("reverse", "B3") and site.start < s.end:
            return False
    return True


class Rescuer:
    """Candidates for escaping oligos of assays on one collection."""

    def __init__(self, collection: Collection, rules: RuleSet, max_shift: int = 10, max_degeneracy: int = 8):
        self.collection = collection
        self.factory = PrimerFactory(collection, rules)
        self.rules = rules
        self.max_shift = max_shift
        self.max_degeneracy = max_degeneracy
        self.limits = design_table("pcr")

    def binds(self, seq: str, site: Site, role: str) -> np.ndarray:
        return self.factory.site_calls(seq, site.start, site.end, site.strand, _group(role)) == BINDS

    def shifts(self, oligo: Oligo, site: Site, others: dict[str, tuple[str, Site]]) -> list[tuple[str, Site]]:
        """Consensus oligos near the site (same strand), within the Tm window of the original."""
        cond = self.rules.conditions
        tm0 = _tm(oligo.sequence, cond)
        L0 = site.end - site.start
        out = []
        for L in range(max(15, L0 - 4), L0 + 5):
            for a in range(site.start - self.max_shift, site.start + self.max_shift + 1):
                s = Site(a, a + L, site.strand)
                if (a, a + L) == (site.start, site.end) or not self.factory.consensus_ok(a, a + L):
                    continue
                if not _layout_ok(oligo.role, s, others):
                    continue
                seq = self.factory.sequence(a, a + L, site.strand)
                gc = (seq.count("G") + seq.count("C")) / L
                if not self.limits["gc_fraction"][0] <= gc <= self.limits["gc_fraction"][1]:
                    continue
                if longest_run(seq) > int(self.limits["max_homopolymer_nt"]):
                    continue
                if not tm0 - 2.0 <= _tm(seq, cond) <= tm0 + 3.0:
                    continue
                out.append((seq, s))
        return out

    def degenerate(self, seq: str, site: Site, missed: np.ndarray) -> str | None:
        """``seq`` with IUPAC codes where genomes in ``missed`` carry other bases (most carried first), within
        the degeneracy limit; None when nothing changes."""
        bases = self.collection.bases[missed, site.start : site.end] & 0x7F
        out = list(seq if site.strand == 0 else reverse_complement(seq))
        options = []
        for i in range(site.end - site.start):
            col = bases[:, i]
            counts = np.bincount(col[col < 4], minlength=4)[:4]
            mask = IUPAC_MASK[out[i]] | sum(1 << b for b in range(4) if counts[b] > 0)
            if mask != IUPAC_MASK[out[i]]:
                options.append((-int(counts.sum()), i, mask))
        product = 1.0
        changed = False
        for _, i, mask in sorted(options):
            k = bin(mask).count("1") / bin(IUPAC_MASK[out[i]]).count("1")
            if product * k > self.max_degeneracy:
                continue
            out[i] = MASK_IUPAC[mask]
            product *= k
            changed = True
        if not changed:
            return None
        top = "".join(out)
        return top if site.strand == 0 else reverse_complement(top)

    def variant(self, site: Site, missed: np.ndarray) -> str | None:
        """The most common sequence of the site among the genomes in ``missed`` (oligo orientation)."""
        bases = self.collection.bases[missed, site.start : site.end] & 0x7F
        rows = [r for r in bases if (r < 4).all()]
        if not rows:
            return None
        keys, counts = np.unique(np.array(rows), axis=0, return_counts=True)
        top = "".join("ACGT"[b] for b in keys[int(np.argmax(counts))])
        return top if site.strand == 0 else reverse_complement(top)

    def candidates(
        self, oligo: Oligo, site: Site, missed: np.ndarray, others: dict[str, tuple[str, Site]]
    ) -> list[Candidate]:
        """Shift, degenerate and added-oligo candidates for one escaping oligo (see the module docstring)."""
        out = []
        shifted = sorted(
            ((int(self.binds(seq, s, oligo.role).sum()), seq, s) for seq, s in self.shifts(oligo, site, others)),
            key=lambda x: -x[0],
        )
        for _n, seq, s in shifted[:5]:
            o = dataclasses.replace(
                oligo, name=f"{oligo.name}-s", sequence=seq, notes=f"rescue: shifted to {s.start + 1}-{s.end}"
            )
            out.append(
                Candidate(
                    "shift",
                    [o],
                    self.binds(seq, s, oligo.role),
                    f"{oligo.name}: moved from {site.start + 1}-{site.end} to {s.start + 1}-{s.end}",
                )
            )
        for seq, s, how in [(oligo.sequence, site, "at its site")] + [(x[1], x[2], "shifted") for x in shifted[:2]]:
            deg = self.degenerate(seq, s, missed)
            if deg is not None:
                o = dataclasses.replace(
                    oligo,
                    name=f"{oligo.name}-d",
                    sequence=deg,
                    notes=f"rescue: degenerate {how} ({s.start + 1}-{s.end})",
                )
                out.append(
                    Candidate(
                        "degenerate", [o], self.binds(deg, s, oligo.role), f"{oligo.name}: degenerate {deg} {how}"
                    )
                )
        var = self.variant(site, missed)
        if var is not None and var != oligo.sequence:
            o = dataclasses.replace(oligo, name=f"{oligo.name}-v", sequence=var, notes="rescue: variant oligo")
            both = self.binds(oligo.sequence, site, oligo.role) | self.binds(var, site, oligo.role)
            out.append(Candidate("added oligo", [oligo, o], both, f"{oligo.name}: kept, {o.name} {var} added"))
        return out


def _role_binds(assay: Assay, cov: CheckCoverage) -> dict[str, np.ndarray]:
    """Per role of the assay: genomes where some oligo of the role binds (by the check)."""
    out: dict[str, np.ndarray] = {}
    for o in assay.oligos:
        for name in [o.name] if o.parts is None else [f"{o.name}:{p}" for p in ("F1c", "F2", "B1c", "B2")]:
            if name in cov.oligo_names:
                assert cov.oligo_calls is not None  # set whenever oligos were searched
                b = cov.oligo_calls[:, cov.oligo_names.index(name)] == BINDS
                key = o.role if o.parts is None else name.split(":")[1]
                out[key] = out.get(key, np.zeros(len(b), bool)) | b
    return out


def _counts(cov: CheckCoverage, name: str) -> dict[str, int]:
    return cov.counts(cov.index(name))


def rescue_assay(
    assay: Assay,
    rescuer: Rescuer,
    genomes: list[str | Path],
    reference: SeqRecord,
    options: CheckOptions,
    min_escape: int = 1,
    top: int = 4,
) -> RescuedAssay:
    """Rescue one assay (see the module docstring); every decision is checked by `check`."""
    order = {g: i for i, g in enumerate(rescuer.collection.ids)}
    cov = check_coverage(AssaySet([assay]), genomes, reference, options)
    idx = np.array([order[g] for g in cov.genome_ids])
    result = RescuedAssay(assay, assay, before=_counts(cov, assay.name))
    sites = oligo_sites(assay, reference, options)
    current, current_cov = assay, cov
    for _ in range(len(assay.oligos)):
        roles = _role_binds(current, current_cov)
        detected = current_cov.calls[:, 0] == 0
        lost = sorted(((int((~b & ~detected).sum()), role) for role, b in roles.items()), reverse=True)
        lost = [(n, role) for n, role in lost if n >= min_escape and role not in result.escaping]
        if not lost:
            break
        n_lost, role = lost[0]
        result.escaping.append(role)
        targets = [o for o in current.oligos if o.role == role]
        if role not in RESCUABLE or len(targets) != 1 or targets[0].name not in sites:
            result.not_rescued.append(
                f"{role}: {n_lost} genomes lost; only a single primer or probe with a site on "
                "the reference is redesigned"
            )
            continue
        oligo = targets[0]
        missed = np.zeros(rescuer.collection.n, bool)
        missed[idx[~roles[role]]] = True
        others = {o.name: (o.role, sites[o.name]) for o in current.oligos if o.name in sites and o.role != role}
        cands = rescuer.candidates(oligo, sites[oligo.name], missed, others)
        best = _best_checked(assay.name, current, role, cands, roles, idx, genomes, reference, options, top)
        if best is None or int((best[1].calls[:, 0] == 0).sum()) <= int(detected.sum()):
            result.not_rescued.append(
                f"{oligo.name} ({role}): {n_lost} genomes lost; no shift, degenerate base or "
                "added oligo detects more genomes"
            )
            continue
        cand, current_cov, current = best
        result.changes.append(f"{cand.kind}: {cand.change}")
        for o in cand.oligos:
            sites.setdefault(o.name, sites[oligo.name])
    result.rescued = current
    result.after = _counts(current_cov, current.name)
    return result


def _assay_binds(cands: list[Candidate], role: str, roles: dict[str, np.ndarray], idx: np.ndarray) -> None:
    """Genomes where every role would bind with each candidate in place (pre-score, from the design's calls)."""
    for c in cands:
        allb = c.binds[idx]
        for r, b in roles.items():
            if r != role:
                allb = allb & b
        c.assay_binds = int(allb.sum())


def _best_checked(
    base: str,
    assay: Assay,
    role: str,
    cands: list[Candidate],
    roles: dict[str, np.ndarray],
    idx: np.ndarray,
    genomes,
    reference,
    options,
    top: int,
) -> tuple[Candidate, CheckCoverage, Assay] | None:
    """The candidate whose rescued assay `check` says detects most genomes: (candidate, its coverage, assay)."""
    if not cands:
        return None
    _assay_binds(cands, role, roles, idx)
    cands.sort(key=lambda c: (-c.assay_binds, KIND_ORDER[c.kind], len(c.oligos)))
    trial = []
    for k, c in enumerate(cands[:top]):
        name = f"{base} (rescued #{k})"
        oligos = [o for o in assay.oligos if o.role != role] + list(c.oligos)
        trial.append(Assay(name, [dataclasses.replace(o, assay=name) for o in oligos], assay.panel, assay.max_amplicon))
    cov = check_coverage(AssaySet(trial), genomes, reference, options)
    k = max(range(len(trial)), key=lambda j: (int((cov.calls[:, j] == 0).sum()), -j))
    name = f"{base} (rescued)"
    rescued = Assay(
        name, [dataclasses.replace(o, assay=name) for o in trial[k].oligos], assay.panel, assay.max_amplicon
    )
    sizes = [sum(2 if o.role in ("FIP", "BIP") else 1 for o in t.oligos) for t in trial]  # searched, in order
    first = sum(sizes[:k])
    cols = list(range(first, first + sizes[k]))
    assert cov.oligo_calls is not None  # set whenever oligos were searched
    sub = CheckCoverage(
        [name], cov.genome_ids, cov.calls[:, [k]].copy(), [cov.oligo_names[j] for j in cols], cov.oligo_calls[:, cols]
    )
    return cands[k], sub, rescued


@dataclass
class RescueResult:
    assays: list[RescuedAssay]
    collection: Collection
    notes: list[str] = field(default_factory=list)


def read_rescue_assays(path: str | Path, names: list[str] | None) -> list[Assay]:
    """The assays to rescue from an assay file (all, or those named)."""
    assays = read_assays([path]).assays
    if names:
        known = {a.name: a for a in assays}
        missing = [n for n in names if n not in known]
        if missing:
            raise InputError(
                path,
                f"no assay named {', '.join(repr(m) for m in missing)}",
                f"use one of: {', '.join(a.name for a in assays[:20])}",
            )
        assays = [known[n] for n in names]
    return assays


def rescue(inputs, path: str | Path, options, names: list[str] | None = None, progress=None) -> RescueResult:
    """Rescue the assays of an assay file on the design inputs' genomes (``inputs`` and ``options`` as for
    :func:`oligolab.design.design`: genomes, reference, rules, search budget)."""
    from ..knowledge import load_rules
    from ..sequences import read_fasta
    from .collection import read_collection

    assays = read_rescue_assays(path, names)
    rules = load_rules(options.rules_path, options.enzymes_dir)
    reference = next(iter(read_fasta(inputs.reference)), None) if inputs.reference else None
    if progress is not None:
        progress("reading and projecting genomes", 0.0)
    collection = read_collection(inputs.genomes, reference, inputs.metadata)
    reference = collection.reference.record
    table = design_table("pcr")
    rescuer = Rescuer(collection, rules, max_degeneracy=int(table.get("max_degeneracy", 8)))
    out = []
    for k, assay in enumerate(assays):
        if progress is not None:
            progress(f"rescuing {assay.name}", k / len(assays))
        out.append(rescue_assay(assay, rescuer, inputs.genomes, reference, options.check_options()))
    notes = [] if any(r.changes for r in out) else ["no assay needed or allowed a rescue"]
    return RescueResult(out, collection, notes)
