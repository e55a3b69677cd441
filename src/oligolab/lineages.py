"""Pango lineages: full ancestry from the alias key (via pango-aliasor), descent tests, and grouping of
thousands of lineages into a few readable clades for reports. Nothing about the lineage tree is hard-coded:
it all follows from the alias key file."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from .errors import InputError

PANGO_NAME = re.compile(r"^(?:[A-Z]{1,3})(?:\.\d+)*$")


class Lineages:
    """Lineage names resolved through a Pango alias key (or used as they are without one)."""

    def __init__(self, alias_key: str | Path | None = None):
        self.aliasor = None
        self._recombinants: dict[str, list[str]] = {}
        if alias_key is not None:
            from pango_aliasor.aliasor import Aliasor

            path = Path(alias_key)
            if not path.exists():
                raise InputError(path, "alias key not found", "give the Pango alias_key.json")
            try:
                self.aliasor = Aliasor(str(path))
            except ValueError as exc:
                raise InputError(path, f"not a Pango alias key ({exc})", "give alias_key.json") from None
            import json

            with open(path, encoding="utf-8") as fh:
                self._recombinants = {
                    k: [p.rstrip("*") for p in v] for k, v in json.load(fh).items() if isinstance(v, list)
                }

    def full(self, name: str) -> str:
        """Unaliased name, e.g. JN.1 -> B.1.1.529.2.86.1.1 (recombinants stay as they are)."""
        if self.aliasor is None or not name:
            return name
        try:
            return self.aliasor.uncompress(name)
        except (KeyError, ValueError, IndexError):
            return name

    def short(self, full_name: str) -> str:
        if self.aliasor is None or not full_name:
            return full_name
        try:
            return self.aliasor.compress(full_name)
        except (KeyError, ValueError, IndexError):
            return full_name

    def descends_from(self, name: str, ancestor: str) -> bool:
        """True when ``name`` is ``ancestor`` or one of its descendants (through aliases)."""
        full, anc = self.full(name), self.full(ancestor)
        return full == anc or full.startswith(anc + ".")

    def recombinant_parents(self, name: str) -> list[str]:
        """Parent lineages of a recombinant (e.g. XBB -> BJ.1, BM.1.1.1) from the alias key; [] otherwise."""
        root = self.full(name).split(".")[0]
        return list(self._recombinants.get(root, []))

    def has_ancestor(self, name: str, ancestor: str, _seen: frozenset = frozenset()) -> bool:
        """Like :meth:`descends_from`, but a recombinant also counts when any of its parents (recursively)
        descends from ``ancestor``: XBB (BJ.1 x BM.1.1.1) has B.1.1.529 as an ancestor."""
        if self.descends_from(name, ancestor):
            return True
        root = self.full(name).split(".")[0]
        if root in _seen:
            return False
        return any(self.has_ancestor(p, ancestor, _seen | {root}) for p in self.recombinant_parents(name))


def looks_like_pango(names: list[str]) -> bool:
    """Whether record ids are Pango lineage names (as in a lineage consensus file)."""
    return bool(names) and sum(bool(PANGO_NAME.match(n)) for n in names) >= 0.9 * len(names)


def group_lineages(names: list[str], lineages: Lineages, max_groups: int = 30) -> dict[str, str]:
    """Map each lineage to a display group: clades are split, largest first, until about ``max_groups``
    groups exist. A group is named by its root lineage (short form) and holds its descendants that are not
    in a finer group; recombinants whose root is small are pooled as 'other recombinants'."""
    full = {n: lineages.full(n) for n in names}
    counts: Counter[str] = Counter()
    for f in full.values():
        parts = f.split(".")
        for i in range(1, len(parts) + 1):
            counts[".".join(parts[:i])] += 1
    children: dict[str, set[str]] = {}
    for node in counts:
        if "." in node:
            children.setdefault(node.rsplit(".", 1)[0], set()).add(node)
    roots = sorted(n for n in counts if "." not in n)
    total = max(1, len(names))
    groups = set(r for r in roots if counts[r] >= max(3, total // (4 * max_groups)))
    small_roots = [r for r in roots if r not in groups]

    def own_size(g: str) -> int:
        return counts[g] - sum(counts[c] for c in _group_children(g, groups, children))

    # split the group with the most members of its own until the budget is used
    while len(groups) < max_groups:
        best = None
        for g in sorted(groups):  # sorted: ties go to the same group whatever the hash seed
            kids = [c for c in children.get(g, ()) if c not in groups]
            if not kids:
                continue
            size = own_size(g)
            if best is None or size > best[0]:
                best = (size, g, kids)
        if best is None or best[0] < 2:
            break
        # promote the largest children of the chosen group
        kids = sorted(best[2], key=lambda c: (-counts[c], c))
        added = 0
        for c in kids:
            if counts[c] >= max(2, total // (8 * max_groups)) and len(groups) < max_groups:
                groups.add(c)
                added += 1
        if added == 0:
            # descend: the group has many small children; look one level further down
            grandkids = [gc for c in kids for gc in children.get(c, ()) if gc not in groups]
            grandkids.sort(key=lambda c: (-counts[c], c))
            for gc in grandkids[:2]:
                if counts[gc] >= 2 and len(groups) < max_groups:
                    groups.add(gc)
                    added += 1
            if added == 0:
                break
    out: dict[str, str] = {}
    for n, f in full.items():
        parts = f.split(".")
        label = None
        for i in range(len(parts), 0, -1):
            node = ".".join(parts[:i])
            if node in groups:
                label = lineages.short(node)
                break
        if label is None:
            label = (
                "other recombinants"
                if parts[0] in small_roots and parts[0].startswith("X")
                else (lineages.short(parts[0]) if parts[0] else "unknown")
            )
        out[n] = label
    return out


def _group_children(g: str, groups: set[str], children: dict[str, set[str]]) -> list[str]:
    """Groups nested directly under ``g`` (through non-group nodes)."""
    out = []
    stack = list(children.get(g, ()))
    while stack:
        node = stack.pop()
        if node in groups:
            out.append(node)
        else:
            stack.extend(children.get(node, ()))
    return out
