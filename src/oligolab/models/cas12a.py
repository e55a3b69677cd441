"""Cas12a (AsCpf1) crRNA activity: predicted indel frequency (%) from the 34-nt target context.

The model is an ensemble of small convolutional networks in the Seq-deepCpf1 layout (Kim et al. 2018,
Nat Biotechnol 36:239): one-hot context -> conv (80 filters, width 5) -> ReLU -> average-pool 2 -> dense
80-40-40 -> 1, where the dense part also sees a few global features (GC content, base composition and a
hairpin free-energy proxy of the spacer). It is trained in torch by ``scripts/train_cas12a_model.py`` on the
HT 1-1 library; this module runs the forward pass in numpy only, so no deep-learning runtime is needed.

Context layout (34 nt, 5'->3' on the PAM strand): 4 nt upstream, 4 nt TTTV PAM, 23 nt protospacer, 3 nt
downstream.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "predict_cas12a_activity",
    "MODEL_INFO",
    "CONTEXT_LENGTH",
    "encode_contexts",
    "global_features",
    "hairpin_energy",
    "MODEL_PATH",
    "INFO_PATH",
]

#: the model's card (name, training data, held-out figures), read from its json on first access (``__getattr__``)
MODEL_INFO: dict[str, Any]

#: length of the target context the model reads (nt)
CONTEXT_LENGTH = 34
#: slices of the context: PAM (TTTV) and the 23-nt protospacer
PAM = slice(4, 8)
PROTOSPACER = slice(8, 31)

MODEL_PATH = Path(__file__).with_name("cas12a_activity_v1.npz")
INFO_PATH = Path(__file__).with_name("cas12a_activity_v1.json")

_LUT = np.full(256, 255, dtype=np.uint8)
for _i, _ch in enumerate("ACGT"):
    _LUT[ord(_ch)] = _i

# ------------------------------------------------------------------------------------------- encoding


def encode_contexts(contexts: Sequence[str]) -> np.ndarray:
    """Encode 34-nt uppercase ACGT contexts as an (N, 34) uint8 array (A=0, C=1, G=2, T=3).

    Raises ValueError naming the first offending index (wrong type, length or letter), so callers can
    point at the bad candidate rather than at the batch.
    """
    if isinstance(contexts, (str, bytes)):
        raise ValueError("contexts must be a sequence of 34-nt strings, not a single string")
    contexts = list(contexts)
    n = len(contexts)
    if n == 0:
        return np.zeros((0, CONTEXT_LENGTH), dtype=np.uint8)
    for i, s in enumerate(contexts):
        if not isinstance(s, str):
            raise ValueError(f"context at index {i} is {type(s).__name__}, expected str")
        if len(s) != CONTEXT_LENGTH:
            raise ValueError(
                f"context at index {i} has length {len(s)}, expected {CONTEXT_LENGTH} nt "
                "(4 nt upstream + 4 nt TTTV PAM + 23 nt protospacer + 3 nt downstream)"
            )
    try:
        raw = "".join(contexts).encode("ascii")
    except UnicodeEncodeError:
        raw = None
    if raw is None or len(raw) != n * CONTEXT_LENGTH:
        for i, s in enumerate(contexts):
            if not s.isascii():
                raise ValueError(f"context at index {i} contains non-ACGT letters: {s!r}")
    assert raw is not None  # a context that is not ASCII was refused just above
    idx = _LUT[np.frombuffer(raw, dtype=np.uint8)].reshape(n, CONTEXT_LENGTH)
    bad = np.flatnonzero((idx == 255).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"context at index {i} contains letters other than uppercase A, C, G, T: {contexts[i]!r}")
    return idx


# ------------------------------------------------------------------------------------------- features

# Nearest-neighbour parameters (Turner 2004, kcal/mol at 37 °C) for a fast single-hairpin energy proxy.
# Pair codes: AU=0 CG=1 GC=2 UA=3 GU=4 UG=5; nucleotides A=0 C=1 G=2 U/T=3.
_PAIR = -np.ones((4, 4), dtype=np.int64)
for (_a, _b), _p in {(0, 3): 0, (1, 2): 1, (2, 1): 2, (3, 0): 3, (2, 3): 4, (3, 2): 5}.items():
    _PAIR[_a, _b] = _p
_PAIR_NAMES = ["AU", "CG", "GC", "UA", "GU", "UG"]
_WC_STACKS = {
    ("AU", "AU"): -0.93,
    ("AU", "UA"): -1.10,
    ("UA", "AU"): -1.33,
    ("CG", "UA"): -2.08,
    ("AU", "GC"): -2.24,
    ("CG", "AU"): -2.11,
    ("GC", "UA"): -2.35,
    ("CG", "GC"): -2.36,
    ("GC", "GC"): -3.26,
    ("GC", "CG"): -3.42,
}


def _stack_table() -> np.ndarray:
    """6x6 stacking free energies (kcal/mol): [outer pair (i,j), inner pair (i+1,j-1)]; GU stacks approximated."""
    t = np.zeros((6, 6))
    for (a, b), e in _WC_STACKS.items():
        t[_PAIR_NAMES.index(a), _PAIR_NAMES.index(b)] = e
        # the same stack read from the other strand: outer' = reverse(inner), inner' = reverse(outer)
        t[_PAIR_NAMES.index(b[::-1]), _PAIR_NAMES.index(a[::-1])] = e
    for i in range(6):
        for j in range(6):
            if i >= 4 or j >= 4:
                if i >= 4 and j >= 4:
                    t[i, j] = -0.2
                else:
                    n_gc = sum(_PAIR_NAMES[x] in ("GC", "CG") for x in (i, j))
                    t[i, j] = {0: -0.5, 1: -1.4}[n_gc]
    return t


_BIG = np.float32(1e4)
_TERM16 = np.full(16, _BIG, dtype=np.float32)  # terminal AU/GU penalty by (5' nt, 3' nt) of a closing pair
_STACK256 = np.full(256, _BIG, dtype=np.float32)  # stack energy by (outer code * 16 + inner code)
_st = _stack_table()
for _a in range(4):
    for _b in range(4):
        _p = _PAIR[_a, _b]
        if _p < 0:
            continue
        _TERM16[_a * 4 + _b] = 0.45 if _p in (0, 3, 4, 5) else 0.0
        for _c in range(4):
            for _d in range(4):
                _q = _PAIR[_c, _d]
                if _q >= 0:
                    _STACK256[(_a * 4 + _b) * 16 + _c * 4 + _d] = _st[_p, _q]
# hairpin loop initiation (kcal/mol) by loop length; < 3 nt forbidden
_HAIRPIN = np.array(
    [_BIG] * 3 + [5.4, 5.6, 5.7, 5.4, 6.0, 5.5, 6.4] + [6.4 + 1.75 * 0.616 * np.log(n / 9) for n in range(10, 64)],
    dtype=np.float32,
)


def hairpin_energy(idx: np.ndarray) -> np.ndarray:
    """Free energy (kcal/mol, <= 0) of the most stable single stem-loop in each encoded sequence.

    A fast proxy for the RNA fold energy of the spacer (stacked helix + hairpin loop + terminal AU/GU
    penalties, no interior loops or multiloops): vectorised over sequences, about 0.3 s per 100,000 23-mers,
    where ViennaRNA takes about a millisecond per sequence. idx: (N, L) codes 0..3.
    """
    seq = np.ascontiguousarray(np.asarray(idx, dtype=np.uint8).T)  # (L, N)
    length, n = seq.shape
    best = np.zeros(n, dtype=np.float32)
    # best helix energy closed by pair (i, i+span) for span-2 and span-1
    prev2: np.ndarray | None = None
    prev1: np.ndarray | None = None
    for span in range(4, length):
        outer = seq[: length - span] * np.uint8(4) + seq[span:]  # (L-span, N) pair codes of (i, i+span)
        term = _TERM16[outer]
        val = term + _HAIRPIN[span - 1]  # pair (i, j) closes a hairpin loop of span-1 nt
        if span >= 6:  # or it stacks on the helix closed by (i+1, j-1)
            assert prev2 is not None  # set at spans 4 and 5
            inner = seq[1 : length - span + 1] * np.uint8(4) + seq[span - 1 : length - 1]
            ext = _STACK256[outer.astype(np.intp) * 16 + inner] + prev2[1 : length - span + 1]
            np.minimum(val, ext, out=val)
        np.minimum(best, (val + term).min(axis=0), out=best)
        prev2, prev1 = prev1, val
    return np.minimum(best, 0.0)


#: names of the global features fed to the dense layers, in order
GLOBAL_FEATURES = (
    "gc_protospacer",
    "gc_seed_1_6",
    "gc_7_18",
    "gc_context",
    "frac_A",
    "frac_C",
    "frac_G",
    "frac_T",
    "hairpin_energy_div5",
)


def global_features(idx: np.ndarray) -> np.ndarray:
    """(N, 9) float32 global features: GC fractions (protospacer, seed nt 1-6, nt 7-18, whole context),
    protospacer base fractions, and the spacer hairpin energy proxy / 5 (kcal/mol / 5, to unit scale)."""
    idx = np.asarray(idx)
    sp = idx[:, PROTOSPACER]
    is_gc = (idx == 1) | (idx == 2)
    cols = [is_gc[:, PROTOSPACER].mean(1), is_gc[:, 8:14].mean(1), is_gc[:, 14:26].mean(1), is_gc.mean(1)]
    cols += [(sp == b).mean(1) for b in range(4)]
    cols.append(hairpin_energy(sp) / 5.0)
    return np.column_stack(cols).astype(np.float32)


# ------------------------------------------------------------------------------------------- model


@functools.lru_cache(maxsize=1)
def _load_info() -> dict[str, Any]:
    with open(INFO_PATH, encoding="utf-8") as fh:
        return json.load(fh)


@functools.lru_cache(maxsize=1)
def _load_model() -> dict[str, Any]:
    """Read the npz once and fold conv -> ReLU -> pool -> first dense layer into look-up tables (cached).

    With a one-hot input, pooled unit q of a width-w convolution depends only on the (w+1)-mer at context
    positions 2q .. 2q+w, so its contribution to the first dense layer is a table indexed by that k-mer
    (4**(w+1) rows per position). The forward pass becomes 15 table look-ups plus three tiny matrix products:
    the same arithmetic as the network, re-associated, about 20x faster than im2col matrix products.
    """
    with np.load(MODEL_PATH, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    names = tuple(str(s) for s in arrays["global_features"])
    if names != GLOBAL_FEATURES:
        raise RuntimeError(f"{MODEL_PATH.name}: global features {names} differ from this code's {GLOBAL_FEATURES}")
    n_models = int(arrays["n_models"])
    width = int(arrays["conv_width"])
    kmer = width + 1
    n_pool = (CONTEXT_LENGTH - width + 1) // 2
    # one-hot of every k-mer: (4**k, k, 4)
    codes = (np.arange(4**kmer)[:, None] // 4 ** np.arange(kmer - 1, -1, -1)[None, :]) % 4
    kmer_onehot = np.eye(4, dtype=np.float32)[codes]
    tables = None  # (n_pool, 4**k, K*h1) float32, filled model by model
    glob_w, b1s, rests = [], [], []
    for k in range(n_models):
        w = arrays[f"m{k}_conv_w"].astype(np.float32)  # (nf, 4, width), torch Conv1d layout
        b = arrays[f"m{k}_conv_b"].astype(np.float32)
        nf = w.shape[0]
        w_flat = w.transpose(2, 1, 0).reshape(width * 4, nf)  # (offset*4 + base, filter)
        c0 = np.maximum(kmer_onehot[:, :width].reshape(len(codes), -1) @ w_flat + b, 0.0)
        c1 = np.maximum(kmer_onehot[:, 1:].reshape(len(codes), -1) @ w_flat + b, 0.0)
        pooled = 0.5 * (c0 + c1)  # (4**k, nf): pooled unit for each k-mer
        w1 = arrays[f"m{k}_dense0_w"].astype(np.float32)  # (h1, nf*n_pool + n_global), torch Linear layout
        h1 = w1.shape[0]
        n_conv_in = nf * n_pool
        w1_conv = w1[:, :n_conv_in].reshape(h1, nf, n_pool)  # torch flattens (filter, position)
        if tables is None:
            tables = np.empty((n_pool, len(codes), n_models * h1), dtype=np.float32)
        for q in range(n_pool):
            tables[q, :, k * h1 : (k + 1) * h1] = pooled @ w1_conv[:, :, q].T
        glob_w.append(w1[:, n_conv_in:].T)
        b1s.append(arrays[f"m{k}_dense0_b"])
        rest, j = [], 1
        while f"m{k}_dense{j}_w" in arrays:
            rest.append(
                (arrays[f"m{k}_dense{j}_w"].astype(np.float32).T.copy(), arrays[f"m{k}_dense{j}_b"].astype(np.float32))
            )
            j += 1
        rests.append(rest)
    return {
        "tables": tables,
        "glob_w": np.concatenate(glob_w, axis=1).astype(np.float32),
        "b1": np.concatenate(b1s).astype(np.float32),
        "rests": rests,
        "kmer": kmer,
        "n_pool": n_pool,
        "scale": float(arrays["output_scale"]),
    }


def _forward(model: dict[str, Any], idx: np.ndarray, glob: np.ndarray) -> np.ndarray:
    """Ensemble-mean network output (before scaling) for one batch of encoded contexts (N, 34)."""
    kmer, n_pool, tables = model["kmer"], model["n_pool"], model["tables"]
    place = 4 ** np.arange(kmer - 1, -1, -1)
    h = glob @ model["glob_w"]
    h += model["b1"]
    for q in range(n_pool):
        h += tables[q][idx[:, 2 * q : 2 * q + kmer] @ place]
    np.maximum(h, 0.0, out=h)
    out = np.zeros(len(idx), dtype=np.float32)
    h1 = h.shape[1] // len(model["rests"])
    for k, rest in enumerate(model["rests"]):
        z = h[:, k * h1 : (k + 1) * h1]
        for j, (w, b) in enumerate(rest):
            z = z @ w + b
            if j < len(rest) - 1:
                np.maximum(z, 0.0, out=z)
        out += z[:, 0]
    return out / len(model["rests"])


def predict_cas12a_activity(contexts: Sequence[str], *, batch_size: int = 2048) -> np.ndarray:
    """Predicted Cas12a indel frequency (%, 0-100) for each 34-nt context (4 nt + TTTV PAM + 23 nt + 3 nt).

    Higher means a more active crRNA. Raises ValueError naming the index of a context with the wrong length
    or letters other than uppercase ACGT. Weights are read once per process on first call.
    """
    idx = encode_contexts(contexts)
    model = _load_model()
    out = np.empty(len(idx), dtype=np.float64)
    for s in range(0, len(idx), batch_size):
        batch = idx[s : s + batch_size].astype(np.intp)
        out[s : s + batch_size] = _forward(model, batch, global_features(batch))
    return np.clip(out * model["scale"], 0.0, 100.0)


def __getattr__(name: str) -> Any:
    # MODEL_INFO is read from the json on first access, so importing this module stays cheap
    if name == "MODEL_INFO":
        return _load_info()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
