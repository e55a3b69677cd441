"""Domain knowledge as data: CRISPR enzymes, amplification tails and limits, and the call rules of `check`.

The shipped files live in ``oligolab/knowledge/``; a user adds an enzyme by dropping a TOML file into a
folder named with ``--enzymes DIR`` (or ``OLIGOLAB_ENZYMES``), and changes the calls with ``--rules FILE``.
"""

from __future__ import annotations

import ast
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import InputError
from .sequences import IUPAC_MASK, reverse_complement
from .thermo import Conditions

KNOWLEDGE_DIR = Path(__file__).with_name("knowledge")


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not valid TOML ({exc})", "fix the TOML syntax") from None
    except FileNotFoundError:
        raise InputError(path, "file not found", "check the path") from None


# ------------------------------------------------------------------------------------------------ enzymes


def cas13b_pfs(five: str, three: str) -> bool:
    """Cas13b's double-sided protospacer flanking site on the target RNA (Smargon et al. 2017, Mol Cell 65:618,
    BzCas13b): the base 5' of the protospacer is not C (D) and the 3' flank reads NAN or NNA. ``five`` and
    ``three`` are the target bases 5' and 3' of the protospacer (1 and 3 nt)."""
    return five in ("A", "G", "T") and len(three) == 3 and (three[1] == "A" or three[2] == "A")


#: Motif rules an enzyme file names with ``motif_rule`` when its PAM/PFS is not one IUPAC pattern. Each takes the
#: flanks as the enzyme file writes them (5' flank, 3' flank) and says whether the motif is satisfied.
MOTIF_RULES: dict[str, Callable[[str, str], bool]] = {"cas13b_pfs": cas13b_pfs}


@dataclass(frozen=True)
class Enzyme:
    """A CRISPR effector as the tools need it. The motif (PAM or PFS) is stored as written in the file (on the
    strand ``motif_strand``: 5' flank ``motif5``, 3' flank ``motif3``) and converted to the oligo orientation (the
    strand that reads like the spacer) by :meth:`oligo_context`."""

    name: str
    family: str
    target: str  #: 'dna' or 'rna'
    spacer_length: int
    spacer_lengths: tuple[int, int]
    motif: str  #: the motif as one text for messages ('TTTV', 'H', 'D|NNN')
    motif_side: str  #: '5prime', '3prime' or 'both' (of the protospacer)
    motif_strand: str  #: 'non-target' or 'target'
    motif_required: bool
    seed: tuple[int, int]  #: 1-based spacer positions from the spacer's 5' end
    direct_repeat: str  #: the repeat / scaffold of the guide RNA ('' when no public source was found)
    activity_model: str
    path: str = ""
    provenance: dict = field(default_factory=dict, compare=False, hash=False)
    motif5: str = ""  #: flank 5' of the protospacer on ``motif_strand`` (IUPAC)
    motif3: str = ""  #: flank 3' of the protospacer on ``motif_strand`` (IUPAC)
    motif_rule: str = ""  #: name in :data:`MOTIF_RULES` applied on top of the IUPAC flanks
    repeat_side: str = "5prime"  #: where the repeat sits in the guide RNA relative to the spacer
    guide_kind: str = "crRNA"  #: 'crRNA' or 'sgRNA' (a fused crRNA-tracrRNA)
    collateral: str = ""  #: what the activated enzyme cleaves: 'ssDNA' or 'ssRNA'
    reporters: tuple = field(default=(), compare=False, hash=False)  #: dicts: name, sequence (vendor notation), ...

    def oligo_context(self) -> tuple[int, int, str]:
        """(5' context length, 3' context length, motif in oligo orientation: 5' part then 3' part) for the
        engine's pattern."""
        m5, m3 = self.motif5, self.motif3
        if self.motif_strand == "target":
            m5, m3 = reverse_complement(m3), reverse_complement(m5)
        return len(m5), len(m3), m5 + m3

    def motif_matches(self, bases: str) -> bool | None:
        """Whether genome bases (oligo orientation, 5' part then 3' part) satisfy the motif; None when a base is
        unknown."""
        c5, _, motif = self.oligo_context()
        if any(b not in "ACGT" for b in bases) or len(bases) != len(motif):
            return None
        if not all(IUPAC_MASK[b] & IUPAC_MASK[m] for b, m in zip(bases, motif)):
            return False
        if not self.motif_rule:
            return True
        five, three = bases[:c5], bases[c5:]
        if self.motif_strand == "target":
            five, three = reverse_complement(three), reverse_complement(five)
        return MOTIF_RULES[self.motif_rule](five, three)

    @property
    def motif_name(self) -> str:
        """'PAM' for DNA-targeting enzymes, 'PFS' (protospacer flanking site) for RNA-targeting ones."""
        return "PAM" if self.target == "dna" else "PFS"

    def guide_rna(self, spacer: str) -> str:
        """The full guide RNA (RNA letters) of a spacer: repeat/scaffold and spacer in the enzyme's layout."""
        rep = self.direct_repeat.upper().replace("T", "U")
        sp = spacer.upper().replace("T", "U")
        return rep + sp if self.repeat_side == "5prime" else sp + rep


def _enzyme_dirs(extra: str | Path | None = None) -> list[Path]:
    dirs = [KNOWLEDGE_DIR / "enzymes"]
    env = os.environ.get("OLIGOLAB_ENZYMES")
    if env:
        dirs.append(Path(env))
    if extra:
        dirs.append(Path(extra))
    return dirs


def _enzyme_motif(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """The motif fields of an enzyme file: one-sided (``motif`` + ``motif_side``) or two-sided (``motif5`` and
    ``motif3``), plus an optional ``motif_rule``."""
    side = data.get("motif_side", "5prime")
    if not all(isinstance(data.get(k, ""), str) for k in ("motif_side", "motif_strand", "motif_rule")):
        raise InputError(path, "motif_side, motif_strand and motif_rule must be text", "fix the enzyme file")
    if "motif5" in data or "motif3" in data:
        m5, m3, side = str(data.get("motif5", "")), str(data.get("motif3", "")), "both"
    else:
        motif = str(data.get("motif", ""))
        m5, m3 = (motif, "") if side == "5prime" else ("", motif)
    strand = data.get("motif_strand", "non-target")
    if side not in ("5prime", "3prime", "both") or strand not in ("target", "non-target"):
        raise InputError(
            path, "motif_side must be 5prime/3prime and motif_strand target/non-target", "fix the enzyme file"
        )
    for m in (m5, m3):
        if any(ch not in IUPAC_MASK for ch in m):
            raise InputError(path, f"motif {m!r} is not IUPAC", "fix the enzyme file")
    rule = str(data.get("motif_rule", ""))
    if rule and rule not in MOTIF_RULES:
        raise InputError(path, f"unknown motif_rule {rule!r}", f"use one of {', '.join(MOTIF_RULES)}")
    text = data.get("motif") or (f"{m5}|{m3}" if m5 and m3 else m5 or m3)
    return dict(motif=text, motif_side=side, motif_strand=strand, motif5=m5, motif3=m3, motif_rule=rule)


def _check_enzyme(path: Path, e: Enzyme) -> Enzyme:
    """Refuse values that are of the right type but cannot be right (nothing is accepted silently)."""

    def bad(what: str) -> InputError:
        return InputError(path, what, "see the shipped enzymes/*.toml for the fields")

    if not e.name.strip() or not e.family.strip():
        raise bad("name and family must not be empty")
    if e.target not in ("dna", "rna"):
        raise bad(f"target {e.target!r} must be dna or rna")
    lo, hi = e.spacer_lengths if len(e.spacer_lengths) == 2 else (0, -1)
    if not (1 <= lo <= e.spacer_length <= hi <= 60 and all(isinstance(x, int) for x in (lo, hi))):
        raise bad(
            f"spacer_length {e.spacer_length} and spacer_lengths {list(e.spacer_lengths)} must satisfy "
            "1 <= low <= spacer_length <= high <= 60"
        )
    if len(e.seed) != 2 or not all(isinstance(x, int) for x in e.seed) or not 0 <= e.seed[0] <= e.seed[1] + 1:
        raise bad(f"seed {list(e.seed)} must be two spacer positions [first, last]")
    if any(ch not in "ACGTUacgtu" for ch in e.direct_repeat):
        raise bad("direct_repeat must be RNA or DNA letters")
    if e.repeat_side not in ("5prime", "3prime") or e.guide_kind not in ("crRNA", "sgRNA"):
        raise bad("repeat_side must be 5prime/3prime and guide_kind crRNA/sgRNA")
    for r in e.reporters:
        if not isinstance(r.get("sequence"), str) or not r["sequence"].strip():
            raise bad("every [[reporter]] needs a sequence (vendor notation)")
    return e


def _enzyme_from_file(path: Path) -> Enzyme:
    data = _load_toml(path)
    if not isinstance(data.get("provenance", {}), dict) or not isinstance(data.get("reporter", []), list):
        raise InputError(
            path,
            "provenance must be a table and reporter a list of tables",
            "see the shipped enzymes/*.toml for the fields",
        )
    try:
        reporters = tuple(dict(r) for r in data.get("reporter", []))
        for key in ("name", "family", "target", "direct_repeat", "activity_model", "motif", "motif5", "motif3"):
            if key in data and not isinstance(data[key], str):
                raise TypeError(f"{key} must be text")
        return _check_enzyme(
            path,
            Enzyme(
                name=data["name"],
                family=data["family"],
                target=data["target"],
                spacer_length=int(data["spacer_length"]),
                spacer_lengths=tuple(data.get("spacer_lengths", [data["spacer_length"]] * 2)),
                motif_required=bool(data.get("motif_required", True)),
                seed=tuple(data.get("seed", [1, 0])),
                direct_repeat=data.get("direct_repeat", ""),
                activity_model=data.get("activity_model", ""),
                path=str(path),
                provenance=data.get("provenance", {}),
                repeat_side=data.get("repeat_side", "5prime"),
                guide_kind=data.get("guide_kind", "crRNA"),
                collateral=data.get("collateral", ""),
                reporters=reporters,
                **_enzyme_motif(path, data),
            ),
        )
    except KeyError as exc:
        raise InputError(
            path, f"enzyme file lacks '{exc.args[0]}'", "see the shipped enzymes/*.toml for the fields"
        ) from None
    except (TypeError, ValueError) as exc:
        raise InputError(
            path, f"enzyme file has a value of the wrong type ({exc})", "see the shipped enzymes/*.toml for the fields"
        ) from None


@lru_cache(maxsize=8)
def load_enzymes(extra_dir: str | None = None) -> dict[str, Enzyme]:
    """All enzymes, by name (case-insensitive lookup via :func:`get_enzyme`)."""
    enzymes: dict[str, Enzyme] = {}
    for d in _enzyme_dirs(extra_dir):
        if not d.is_dir():
            raise InputError(d, "enzyme folder not found", "give a folder of enzyme TOML files")
        for path in sorted(d.glob("*.toml")):
            e = _enzyme_from_file(path)
            enzymes[e.name.lower()] = e
    return enzymes


def get_enzyme(name: str, extra_dir: str | None = None) -> Enzyme:
    enzymes = load_enzymes(extra_dir)
    try:
        return enzymes[name.lower()]
    except KeyError:
        raise InputError(
            None,
            f"unknown enzyme '{name}'",
            f"use one of {', '.join(e.name for e in enzymes.values())} or add an enzyme file with --enzymes DIR",
        ) from None


@lru_cache(maxsize=1)
def amplification() -> dict[str, Any]:
    return _load_toml(KNOWLEDGE_DIR / "amplification.toml")


@lru_cache(maxsize=1)
def lab_service() -> dict[str, Any]:
    """Seed assays of a new lab (knowledge/lab-service.toml)."""
    return _load_toml(KNOWLEDGE_DIR / "lab-service.toml")


@lru_cache(maxsize=1)
def lab_exports() -> dict[str, Any]:
    """How final calls are coded in exports (knowledge/lab-exports.toml): FHIR codings, LOINC per rule set."""
    return _load_toml(KNOWLEDGE_DIR / "lab-exports.toml")


@lru_cache(maxsize=1)
def lab_day() -> dict[str, Any]:
    """Codes of the lab's day (knowledge/lab-day.toml): specimen types, identifier systems, HL7 v2 tables."""
    return _load_toml(KNOWLEDGE_DIR / "lab-day.toml")


def strip_known_tail(sequence: str) -> tuple[str, str]:
    """Split a known 5' tail (e.g. the T7 promoter) off a primer: (tail, binding part)."""
    for tail in amplification()["tails"].values():
        if sequence.startswith(tail) and len(sequence) - len(tail) >= 10:
            return tail, sequence[len(tail) :]
    return "", sequence


# -------------------------------------------------------------------------------------------------- rules

_ALLOWED_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Call,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.USub,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Eq,
    ast.NotEq,
)
RULE_VARIABLES = (
    "mismatches",
    "unknown",
    "gaps",
    "tm_drop",
    "tm",
    "dg",
    "seed_mm",
    "motif_ok",
    "motif_unknown",
    "length",
)
RULE_FUNCTIONS = ("mm3p",)
CALLS = ("binds", "degraded", "no data", "fails")  #: an oligo at a site; index = call code, best to worst
ASSAY_CALLS = ("detected", "at risk", "no data", "not detected")  #: an assay in a genome; same codes as CALLS
GROUPS = ("primer", "probe")  #: oligo groups; guides form one group per enzyme family (see rule_groups)


@dataclass
class Rule:
    groups: tuple[str, ...]
    when: str
    call: str
    why: str
    code: Any
    conditions: tuple[tuple[str, Any], ...] = ()  #: the ``or``-ed parts of ``when``: (text, compiled)

    def fired(self, figures: dict[str, Any]) -> str:
        """The part of ``when`` that is true for these figures, with the figures it reads, e.g.
        'tm_drop >= 5 (tm_drop 7.1)': the condition that fired, not the whole rule."""
        for text, code in self.conditions:
            if eval(code, {"__builtins__": {}}, figures):  # noqa: S307 (validated AST)
                return f"{text} ({_figure_values(text, figures)})"
        return self.when


def rule_groups(enzymes_dir: str | None = None) -> tuple[str, ...]:
    """Groups a rule may name: primer, probe, and the family of every known enzyme (Cas12a, Cas13a, ...)."""
    return GROUPS + tuple(sorted({e.family for e in load_enzymes(enzymes_dir).values()}))


@dataclass
class RuleSet:
    path: str
    conditions: Conditions
    rules: list[Rule]

    def covers(self, group: str) -> bool:
        """Whether any rule names ``group``."""
        return any(group in rule.groups for rule in self.rules)

    def call(self, group: str, figures: dict[str, Any]) -> tuple[str, str]:
        """(call, reason) for a site's figures; 'binds' when no rule fires. A guide group (enzyme family) that
        no rule names is refused: every site would bind, a wrong result that must not pass silently."""
        if group not in GROUPS and not self.covers(group):
            raise InputError(
                self.path,
                f"no rule for {group} guides",
                f'add [[rule]] entries with groups = ["{group}"] (see the shipped check-rules.toml)',
            )
        for rule in self.rules:
            if group in rule.groups and eval(rule.code, {"__builtins__": {}}, figures):  # noqa: S307 (validated AST)
                return rule.call, rule.fired(figures)
        return "binds", ""


def _figure_values(text: str, figures: dict[str, Any]) -> str:
    """'name value' for every figure (and mm3p(n) call) a condition reads, in the order written."""
    out: list[str] = []
    for node in ast.walk(ast.parse(text, mode="eval")):
        if isinstance(node, ast.Call) or (isinstance(node, ast.Name) and node.id in RULE_VARIABLES):
            part = ast.unparse(node)
            value = eval(compile(ast.Expression(node), "<figure>", "eval"), {"__builtins__": {}}, figures)  # noqa: S307
            shown = f"{value:.1f}" if isinstance(value, float) else str(value).lower()
            if f"{part} {shown}" not in out:
                out.append(f"{part} {shown}")
    return ", ".join(out)


def _disjuncts(tree: ast.Expression) -> list[ast.expr]:
    """The top-level ``or``-ed parts of an expression (the expression itself when it is not an ``or``)."""
    body = tree.body
    if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.Or):
        return list(body.values)
    return [body]


def _compile_rule(path: Path, index: int, text: str) -> Any:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InputError(
            path,
            f"rule {index}: cannot parse when = {text!r} ({exc.msg})",
            "write an expression such as 'mismatches >= 2 or mm3p(5) >= 1'",
        ) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise InputError(
                path,
                f"rule {index}: '{type(node).__name__}' is not allowed in {text!r}",
                "use figures, numbers, comparisons, and/or/not, + - *",
            )
        if isinstance(node, ast.Name) and node.id not in RULE_VARIABLES + RULE_FUNCTIONS:
            raise InputError(
                path,
                f"rule {index}: unknown figure '{node.id}' in {text!r}",
                f"use one of {', '.join(RULE_VARIABLES + RULE_FUNCTIONS)}",
            )
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in RULE_FUNCTIONS):
            raise InputError(
                path, f"rule {index}: only {', '.join(RULE_FUNCTIONS)} may be called", "fix the expression"
            )
    return compile(tree, f"{path}:rule{index}", "eval")


def load_rules(path: str | Path | None = None, enzymes_dir: str | None = None) -> RuleSet:
    """Read a rule file (default: the shipped check-rules.toml), validating every expression; groups are
    primer, probe and the families of the enzymes known (shipped, ``OLIGOLAB_ENZYMES``, ``enzymes_dir``)."""
    path = Path(path) if path else KNOWLEDGE_DIR / "check-rules.toml"
    groups = rule_groups(enzymes_dir)
    data = _load_toml(path)
    cond = data.get("conditions", {})
    try:
        conditions = Conditions(**{k: float(v) for k, v in cond.items()})
    except TypeError as exc:
        raise InputError(
            path,
            f"unknown condition ({exc})",
            "use monovalent_mM, divalent_mM, dntp_mM, oligo_nM, temperature_C, template_flank_nt",
        ) from None
    rules = []
    for i, r in enumerate(data.get("rule", []), 1):
        for key in ("groups", "when", "call"):
            if key not in r:
                raise InputError(path, f"rule {i} lacks '{key}'", "every [[rule]] needs groups, when, call")
        if r["call"] not in CALLS:
            raise InputError(path, f"rule {i}: call {r['call']!r} is not one of {', '.join(CALLS)}", "fix the call")
        if not isinstance(r["groups"], list) or not all(isinstance(g, str) for g in r["groups"]):
            raise InputError(path, f"rule {i}: groups must be a list of names", 'write groups = ["primer"]')
        bad = [g for g in r["groups"] if g not in groups]
        if bad:
            raise InputError(path, f"rule {i}: unknown group(s) {', '.join(bad)}", f"use {', '.join(groups)}")
        code = _compile_rule(path, i, r["when"])
        parts = tuple(
            (ast.unparse(p), compile(ast.Expression(p), f"{path}:rule{i}", "eval"))
            for p in _disjuncts(ast.parse(r["when"], mode="eval"))
        )
        rules.append(Rule(tuple(r["groups"]), r["when"], r["call"], r.get("why", ""), code, parts))
    return RuleSet(str(path), conditions, rules)


def make_figures(
    mismatches: int,
    unknown: int,
    gaps: int,
    tm_drop: float,
    tm_value: float,
    dg: float,
    seed_mm: int,
    motif_ok: bool,
    motif_unknown: bool,
    length: int,
    mm3p: Callable[[int], int],
) -> dict[str, Any]:
    return dict(
        mismatches=mismatches,
        unknown=unknown,
        gaps=gaps,
        tm_drop=tm_drop,
        tm=tm_value,
        dg=dg,
        seed_mm=seed_mm,
        motif_ok=motif_ok,
        motif_unknown=motif_unknown,
        length=length,
        mm3p=mm3p,
    )
