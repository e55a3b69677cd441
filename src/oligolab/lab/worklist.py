"""Worklists: waiting specimens and the rule set's controls placed on a 96- or 384-well plate, written as the
plate map that ``oligolab lab`` and the service read back (:func:`oligolab.lab.platemap.read_plate_map`), so
nobody types a plate map.

Placement follows the plate column by column (A1, B1, ... H1, A2, ...: the order of an 8- or 16-channel
pipette). The rule set's controls come first, one of each (``ntc``, ``pc``, ``ec`` as the rule set names
them), then the specimens in the order given (oldest first, retests first when the caller sorts them so).
Singleplex assays take one well per target for each specimen and control, in consecutive wells; multiplex
assays put every target in one well, told apart by dye. Specimens that do not fit stay waiting.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from ..errors import InputError
from .exports.csv import neutralise
from .rules import RuleSet

#: plate sizes: wells -> (rows, columns)
PLATES = {96: (8, 12), 384: (16, 24)}
#: plate-map columns, as the lab core's reader documents them
MAP_COLUMNS = ("well", "sample", "role", "target", "dye")


@dataclass(frozen=True)
class Placement:
    """One curve of the plate: a well, what is in it, and which target (and dye) it reads."""

    well: str
    sample: str
    role: str  #: sample | ntc | pc | ec | empty
    target: str = ""
    dye: str = ""


@dataclass(frozen=True)
class Worklist:
    """A plate's layout and which specimens it takes."""

    plate: int
    multiplex: bool
    placements: tuple[Placement, ...]
    placed: tuple[str, ...]  #: specimen ids on the plate, in placement order
    waiting: tuple[str, ...]  #: specimen ids that did not fit (still waiting)
    controls: tuple[str, ...]  #: control sample names on the plate

    def wells_of(self, sample: str) -> list[str]:
        return sorted({p.well for p in self.placements if p.sample == sample}, key=self.well_order().index)

    def well_order(self) -> list[str]:
        return fill_order(self.plate)

    def plate_map(self) -> pd.DataFrame:
        """Every well of the plate (unused ones ``empty``) in the plate-map columns."""
        by_well = {p.well for p in self.placements}
        rows = list(self.placements) + [Placement(w, "", "empty") for w in self.well_order() if w not in by_well]
        frame = pd.DataFrame([{c: getattr(p, c) for c in MAP_COLUMNS} for p in rows], columns=list(MAP_COLUMNS))
        order = {w: i for i, w in enumerate(self.well_order())}
        return frame.sort_values("well", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    def plate_map_csv(self) -> str:
        """The plate map as CSV text (``well,sample,role,target,dye``)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(MAP_COLUMNS)
        for row in self.plate_map().itertuples(index=False):
            writer.writerow([neutralise(str(v)) for v in row])
        return out.getvalue()


def fill_order(plate: int) -> list[str]:
    """The wells of a plate column by column: A1, B1, ..., then A2, ..."""
    if plate not in PLATES:
        raise InputError("worklist", f"a {plate}-well plate is not supported", "use 96 or 384")
    rows, cols = PLATES[plate]
    letters = "ABCDEFGHIJKLMNOP"[:rows]
    return [f"{r}{c}" for c in range(1, cols + 1) for r in letters]


def control_name(ruleset: RuleSet, role: str) -> str:
    """The sample name a control's wells get: the rule set's control name up to its first parenthesis
    ("NTC (no template control)" -> "NTC")."""
    name = ruleset.controls[role].name or role.upper()
    return name.split(" (")[0].strip() or role.upper()


def build_worklist(
    specimens: Sequence[str],
    ruleset: RuleSet,
    *,
    plate: int = 96,
    multiplex: bool = False,
    dyes: Mapping[str, str] | None = None,
    targets: Sequence[str] | None = None,
) -> Worklist:
    """Place the rule set's controls and as many of ``specimens`` as fit on one plate.

    ``targets``: the rule set's targets run on this plate (default: all of them); ``dyes``: target -> dye
    (required for multiplex, optional otherwise).
    """
    order = fill_order(plate)
    targets = list(targets or ruleset.targets)
    unknown = [t for t in targets if t not in ruleset.targets]
    if unknown:
        raise InputError(
            "worklist",
            f"targets {', '.join(unknown)} are not in rule set {ruleset.label()}",
            f"use {', '.join(ruleset.targets)}",
        )
    dyes = dict(dyes or {})
    if multiplex and (missing := [t for t in targets if not dyes.get(t)]):
        raise InputError(
            "worklist",
            f"a multiplex plate needs a dye for {', '.join(missing)}",
            "give each target its dye (e.g. N1=FAM, N2=HEX, RP=Cy5)",
        )
    controls = [(control_name(ruleset, role), role) for role in ruleset.controls]
    names = {c for c, _ in controls}
    seen: set[str] = set()
    for s in specimens:
        if s in names:
            raise InputError(
                "worklist", f"specimen id '{s}' is the name of a control", "relabel the specimen", record=s
            )
        if s in seen:
            raise InputError("worklist", f"specimen '{s}' is listed twice", "place each specimen once", record=s)
        seen.add(s)
    per_item = 1 if multiplex else len(targets)
    slots = len(order) // per_item
    if slots <= len(controls):
        raise InputError(
            "worklist",
            f"a {plate}-well plate has no room for specimens besides the controls",
            "use a 384-well plate or fewer targets",
        )
    placed = list(specimens[: slots - len(controls)])
    items = controls + [(s, "sample") for s in placed]
    placements = []
    for k, (name, role) in enumerate(items):
        for j, target in enumerate(targets):
            well = order[k] if multiplex else order[k * per_item + j]
            placements.append(Placement(well, name, role, target, dyes.get(target, "")))
    return Worklist(
        plate,
        multiplex,
        tuple(placements),
        tuple(placed),
        tuple(specimens[len(placed) :]),
        tuple(c for c, _ in controls),
    )
