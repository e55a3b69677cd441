"""What a design produces: assays (guides plus the primers that feed them) in a form that converts one to one
into the project's assay table, so that `oligolab check --assays` reads a design exactly as designed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..assays import Assay, AssaySet, Oligo
from ..knowledge import Enzyme


@dataclass
class DesignedOligo:
    """One oligo of a designed assay. ``sequence`` is the binding part, 5'->3'; ``tail`` a 5' extension that
    does not bind (the T7 promoter). FIP/BIP keep their two halves in ``parts`` (F1c|F2, B1c|B2)."""

    name: str
    role: str
    sequence: str
    start: int  #: first reference column (0-based) of the binding site (of the 3' part for FIP/BIP)
    end: int
    strand: int  #: 0: reads like the reference top strand; 1: like the bottom strand
    tail: str = ""
    parts: tuple[str, str] | None = None
    part_sites: tuple[tuple[int, int], tuple[int, int]] | None = None  #: reference columns of each half
    tm_C: float = float("nan")
    gc: float = float("nan")
    hairpin_dg_kcal: float = float("nan")
    n_binds: int = 0  #: design genomes where it binds (pre-score)
    variable_columns: int = 0
    notes: str = ""
    survival: float = float("nan")  #: P(an unseen genome of the family leaves it binding), see conservation
    end_dg_kcal: float = float("nan")  #: primers: ΔG of the 3'-terminal pentamer (3'-end stability)

    @property
    def full_sequence(self) -> str:
        """The sequence to order, 5'->3' (tail in lower case is not used: tails are written upper case)."""
        core = self.sequence if self.parts is None else self.parts[0] + self.parts[1]
        return self.tail + core

    @property
    def table_sequence(self) -> str:
        """As written in the assay table: tail in lower case, FIP/BIP as F1c|F2."""
        core = self.sequence if self.parts is None else f"{self.parts[0]}|{self.parts[1]}"
        return self.tail.lower() + core


@dataclass
class DesignedAssay:
    """Guides, primers, amplicon and the figures that ranked it."""

    name: str
    chemistry: str  #: rpa, lamp, pcr
    enzyme: Enzyme
    guide_members: list[int]  #: indices into the guide candidates
    oligos: list[DesignedOligo]
    amplicon: tuple[int, int]  #: reference columns [start, end) from the first to the last primer base
    prescore: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)  #: activity, folding, specificity, check-based coverage, ...
    covered: np.ndarray | None = field(default=None, repr=False)  #: pre-score bitset of detected genomes
    notes: list[str] = field(default_factory=list)  #: what the design could not do (e.g. why no loop primer)

    @property
    def guides(self) -> list[DesignedOligo]:
        return [o for o in self.oligos if o.role == "crRNA"]

    @property
    def primers(self) -> list[DesignedOligo]:
        return [o for o in self.oligos if o.role != "crRNA"]

    def to_assay(self) -> Assay:
        """The assay as the project's readers would build it from the design's TSV."""
        out = []
        for o in self.oligos:
            out.append(
                Oligo(
                    o.name,
                    self.name,
                    o.role,
                    o.sequence if o.parts is None else o.parts[0] + o.parts[1],
                    o.tail,
                    self.enzyme.name if o.role == "crRNA" else None,
                    "design",
                    o.notes,
                    o.parts,
                )
            )
        max_amp = None
        return Assay(self.name, out, "oligolab design", max_amp)

    def table_rows(self) -> list[dict]:
        return [
            {
                "assay": self.name,
                "oligo": o.name,
                "role": o.role,
                "sequence": o.table_sequence,
                "enzyme": self.enzyme.name if o.role == "crRNA" else "",
                "max_amplicon": "",
                "notes": o.notes,
            }
            for o in self.oligos
        ]


def assay_set(assays: list[DesignedAssay]) -> AssaySet:
    return AssaySet([a.to_assay() for a in assays])
