"""The sequences `check` searches for: every oligo of every assay as the engine needs it (known 5' tails such as
the T7 promoter stripped, LAMP FIP/BIP split into their two halves, a guide with its PAM/PFS as context)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..assays import PRIMER_ROLES, AssaySet, Oligo
from ..engine import MAX_PATTERN, PatternSet, search
from ..errors import InputError
from ..knowledge import Enzyme, get_enzyme, strip_known_tail
from ..sitecall import rule_group


def _source_file(o: Oligo) -> str:
    """The assay file an oligo was read from (its source is 'file:line' or 'file')."""
    return o.source.split(":")[0]


def _source_line(o: Oligo) -> int | None:
    return int(o.source.split(":")[1]) if ":" in o.source else None


@dataclass
class SearchOligo:
    """One searched sequence: an oligo, or one half of a LAMP FIP/BIP."""

    name: str
    oligo: Oligo
    part: str  #: '' for a whole oligo; 'F1c', 'F2', 'B1c', 'B2' for FIP/BIP halves
    role: str  #: the role used for geometry (the part name for FIP/BIP halves)
    group: str  #: rule group: primer, probe, Cas12a, Cas13a
    core: str  #: binding sequence (IUPAC, oligo orientation)
    enzyme: Enzyme | None = None
    context5: int = 0
    context3: int = 0
    motif: str = ""
    seed: tuple[int, int] = (1, 0)

    @property
    def pattern(self) -> str:
        return "N" * self.context5 + self.core + "N" * self.context3


def _split_inner_primer(o: Oligo, reference: np.ndarray | None) -> tuple[str, str]:
    """FIP = F1c + F2 (BIP = B1c + B2): the split given with '|', or found on the reference as the cut
    where both halves bind it (the 3' half reading like the strand the 5' half pairs against)."""
    if o.parts is not None:
        return o.parts
    if reference is None:
        raise InputError(
            _source_file(o),
            f"cannot split {o.role} '{o.name}' into its two parts without a reference",
            f"write it as {'F1c|F2' if o.role == 'FIP' else 'B1c|B2'} or pass --reference",
            line=_source_line(o),
        )
    seq = o.sequence
    cuts = list(range(12, len(seq) - 11))
    names, seqs = [], []
    for i in cuts:
        names += [f"a{i}", f"b{i}"]
        seqs += [seq[:i], seq[i:]]
    hits, sites = search(PatternSet.from_oligos(names, seqs), [reference], 0, 0, threads=1)
    found: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for p, s in zip(hits.pos, hits.site):
        found[int(sites.pattern[s])].append((int(p), int(sites.pattern[s]) % 2))
    best = None
    for ci, i in enumerate(cuts):
        a_sites, b_sites = (
            found.get(4 * ci, []) + found.get(4 * ci + 1, []),
            found.get(4 * ci + 2, []) + found.get(4 * ci + 3, []),
        )
        for pa, sa in a_sites:
            for pb, sb in b_sites:
                if sa != sb and abs(pa - pb) < 300:
                    score = min(i, len(seq) - i)
                    if best is None or score > best[0]:
                        best = (score, i)
    if best is None:
        raise InputError(
            _source_file(o),
            f"{o.role} '{o.name}': no split into two halves that both bind the reference",
            f"write it as {'F1c|F2' if o.role == 'FIP' else 'B1c|B2'}",
            line=_source_line(o),
        )
    return seq[: best[1]], seq[best[1] :]


def compile_search_oligos(
    assays: AssaySet, reference: np.ndarray | None, enzymes_dir: str | None = None
) -> list[SearchOligo]:
    """Search oligos for every oligo of every assay (tails stripped, FIP/BIP halves, guide context)."""
    out: list[SearchOligo] = []
    for o in assays.oligos:
        if not o.tail and o.role in PRIMER_ROLES:
            tail, core = strip_known_tail(o.sequence)
            if tail:
                o.tail, o.sequence = tail, core
        if o.role in ("FIP", "BIP"):
            first, second = _split_inner_primer(o, reference)
            o.parts = (first, second)
            names = ("F1c", "F2") if o.role == "FIP" else ("B1c", "B2")
            for part, seq in zip(names, (first, second)):
                out.append(SearchOligo(f"{o.name}:{part}", o, part, part, "primer", seq))
        elif o.role == "crRNA":
            enzyme = get_enzyme(o.enzyme or "", enzymes_dir)
            c5, c3, motif = enzyme.oligo_context()
            lo, hi = enzyme.spacer_lengths
            if not lo <= len(o.sequence) <= hi:
                raise InputError(
                    _source_file(o),
                    f"crRNA '{o.name}' spacer has {len(o.sequence)} nt; {enzyme.name} takes {lo}-{hi} nt",
                    "give the spacer only (no direct repeat)",
                    line=_source_line(o),
                )
            out.append(
                SearchOligo(
                    o.name, o, "", "crRNA", rule_group("crRNA", enzyme), o.sequence, enzyme, c5, c3, motif, enzyme.seed
                )
            )
        else:
            out.append(SearchOligo(o.name, o, "", o.role, rule_group(o.role), o.sequence))
    for so in out:
        if len(so.pattern) > MAX_PATTERN:
            raise InputError(
                _source_file(so.oligo),
                f"oligo '{so.name}' has {len(so.core)} nt; the search takes "
                f"at most {MAX_PATTERN - so.context5 - so.context3} nt",
                "give the binding part only (a 5' tail in lower case)",
                line=_source_line(so.oligo),
            )
    return out
