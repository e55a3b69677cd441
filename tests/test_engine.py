"""The approximate-match engine against independent brute-force oracles, on real genomes and oligos."""

from __future__ import annotations

import numpy as np
import pytest

from oligolab.assays import read_assays
from oligolab.engine import Engine, PatternSet, pack_batch, search
from oligolab.sequences import IUPAC_MASK

from conftest import DIAG_ASSAYS, PANGO as PANGO_PATH, pango_records


def _diag_patterns():
    oligos = read_assays([DIAG_ASSAYS]).oligos
    return PatternSet.from_oligos([o.name for o in oligos], [o.sequence for o in oligos])


def _brute_ungapped(ps: PatternSet, seqs, k):
    """Every (genome, start, pattern, differences) with <= k differences, by sliding windows in numpy."""
    out = set()
    for j in range(ps.n_patterns):
        m = ps.lengths[j]
        masks = ps.masks[j, :m]
        for gi, c in enumerate(seqs):
            win = np.lib.stride_tricks.sliding_window_view(c, m)
            match = ((masks[None, :] >> np.minimum(win, 7)) & 1).astype(bool) & (win < 4)
            diff = m - match.sum(1)
            for p in np.flatnonzero(diff <= k):
                out.add((gi, int(p), j, int(diff[p])))
    return out


def _engine_set(hits, sites):
    return {(int(g), int(p), int(sites.pattern[s]), int(sites.mismatches[s] + sites.unknown[s]))
            for g, p, s in zip(hits.genome, hits.pos, hits.site)}


def test_ungapped_equals_brute_force_on_real_genomes():
    """All sites with <= 3 mismatches (IUPAC-aware) of the 55 published oligos in 12 real lineage genomes."""
    ps = _diag_patterns()
    seqs = [r.codes() for r in pango_records(12)]
    hits, sites = search(ps, seqs, 3, 0, threads=1)
    expected = _brute_ungapped(ps, seqs, 3)
    assert len(expected) > 12 * 50  # every oligo binds every genome at least once, plus weaker sites
    assert _engine_set(hits, sites) == expected


def test_same_answer_whatever_the_threads_batches_and_cache():
    ps = _diag_patterns()
    seqs = [r.codes() for r in pango_records(12)]
    ref_hits, ref_sites = search(ps, seqs, 3, 2, threads=1, cache=False)
    expected = _engine_set(ref_hits, ref_sites)
    for threads in (1, 2):
        engine = Engine(ps, 3, 2, threads=threads)
        parts = []
        for lo, hi in ((0, 5), (5, 6), (6, 12)):  # uneven batches: the cache carries over
            codes, ends = pack_batch(seqs[lo:hi])
            parts.append(engine.search_codes(codes, ends))
        engine.close()
        got = set()
        for h in parts:
            got |= _engine_set(h, engine.sites)
        assert got == expected
    assert engine.stats["searched"] < engine.stats["positions"] / 5  # repeated content was not searched again


def _oracle(masks, ctx, text, s, k, g):
    """Best alignment starting at text[s] by exhaustive recursion: (cost, gaps, span, differences)."""
    m = len(masks)
    res = []

    def rec(i, t, d, gaps):
        if t >= len(text) or text[t] == 5:
            return
        c = text[t]
        add = 0 if ctx[i] else (1 if c == 4 or not (masks[i] >> c) & 1 else 0)
        if d + add + gaps > k:
            return
        if i == m - 1:
            res.append((d + add + 2 * gaps, gaps, t - s + 1, d + add))
            return
        for ins in range(0, g - gaps + 1):
            rec(i + 1, t + 1 + ins, d + add, gaps + ins)
        for dl in range(1, g - gaps + 1):
            if i + 1 + dl <= m - 1:
                rec(i + 1 + dl, t + 1, d + add, gaps + dl)

    rec(0, s, 0, 0)
    return min(res) if res else None


def test_gapped_sites_match_an_exhaustive_oracle(reference):
    """Synthetic variants of the real N-gene region (labelled synthetic: random substitutions, insertions,
    deletions and an N run, seed 7) against an exhaustive alignment oracle."""
    oligos = read_assays([DIAG_ASSAYS]).oligos
    chosen = [o for o in oligos if o.name in ("2019-nCoV-N1-F", "2019-nCoV-N1-P", "2019-nCoV-N1-R", "HKU-NR")]
    ps = PatternSet.from_oligos([o.name for o in chosen], [o.sequence for o in chosen])
    rng = np.random.default_rng(7)
    base = reference.codes()[28200:28800]
    seqs = []
    for v in range(4):
        c = list(base)
        for _ in range(12):
            p = int(rng.integers(0, len(c) - 5))
            op = int(rng.integers(0, 3))
            if op == 0:
                c[p] = int(rng.integers(0, 4))
            elif op == 1:
                del c[p:p + int(rng.integers(1, 3))]
            else:
                c[p:p] = [int(x) for x in rng.integers(0, 4, size=int(rng.integers(1, 3)))]
        if v == 3:
            c[100:104] = [4] * 4
        seqs.append(np.array(c, dtype=np.uint8))
    k, g = 3, 2
    hits, sites = search(ps, seqs, k, g, threads=1)
    found = {}
    for gi, p, s in zip(hits.genome, hits.pos, hits.site):
        found[(int(gi), int(p), int(sites.pattern[s]))] = (int(sites.cost[s]), int(sites.gaps[s]),
                                                           int(sites.span[s]),
                                                           int(sites.mismatches[s] + sites.unknown[s]))
    assert any(v[1] > 0 for v in found.values()), "the variants should create gapped sites"
    for (gi, p, j), val in found.items():  # every reported site is the optimum at its start
        m = ps.lengths[j]
        assert _oracle(ps.masks[j, :m], ps.is_context[j, :m], seqs[gi], p, k, g) == val
    for gi, c in enumerate(seqs):  # and none is missing
        for j in range(ps.n_patterns):
            m = ps.lengths[j]
            for s in range(len(c) - m + 1):
                o = _oracle(ps.masks[j, :m], ps.is_context[j, :m], c, s, k, g)
                if o is None or (gi, s, j) in found:
                    continue
                assert o[1] > 0, f"ungapped site missing at {gi}:{s} pattern {j}"
                covered = [q for q in range(s - 80, s + 80) if (gi, q, j) in found
                           and q < s + o[2] and q + found[(gi, q, j)][2] > s
                           and (found[(gi, q, j)][1] == 0 or found[(gi, q, j)][0] <= o[0])]
                assert covered, f"gapped site at {gi}:{s} pattern {j} neither reported nor dominated"


def test_unknown_bases_are_never_a_match(reference):
    seq = reference.codes()[28280:28370].copy()
    ps = PatternSet.from_oligos(["N1-F"], ["GACCCCAAAATCAGCGAAAT"])
    hits, sites = search(ps, [seq], 3, 0)
    assert len(hits) == 1 and sites.unknown[hits.site[0]] == 0
    start = int(hits.pos[0])
    seq[start + 3] = 4  # an N in the site
    hits, sites = search(ps, [seq], 3, 0)
    s = hits.site[0]
    assert (sites.mismatches[s], sites.unknown[s]) == (0, 1)
    seq[start + 5: start + 9] = 4  # more unknowns than the budget: no site
    hits, _ = search(ps, [seq], 3, 0)
    assert len(hits) == 0


def test_degenerate_oligo_bases_match_any_of_their_bases():
    # CDC N3 probe carries a Y (C or T)
    ps = PatternSet.from_oligos(["p"], ["AYCACATTGGCACCCGCAATCCTG"])
    for base in "CT":
        seq = np.frombuffer(("GGG" + "A" + base + "CACATTGGCACCCGCAATCCTG" + "GGG").encode(), dtype=np.uint8)
        from oligolab.sequences import encode
        hits, sites = search(ps, [encode(seq.tobytes())], 0, 0)
        assert len(hits) == 1
    assert IUPAC_MASK["Y"] == IUPAC_MASK["C"] | IUPAC_MASK["T"]


def test_context_positions_cost_nothing_and_report_the_pam(reference):
    """A Cas12a-style pattern NNNN+spacer: the PAM bases are read, never counted as differences."""
    from oligolab.sequences import decode

    ref = reference.codes()
    # take a real TTTV site from the reference
    text = decode(ref)
    i = text.find("TTTA", 1000)
    spacer = text[i + 4:i + 24]
    ps = PatternSet.from_oligos(["g"], ["NNNN" + spacer], context5=[4])
    hits, sites = search(ps, [ref], 0, 0)
    starts = [int(p) for p in hits.pos]
    assert i in starts
    s = hits.site[starts.index(i)]
    assert decode(sites.target[s, :4]) == "TTTA"


@pytest.mark.parametrize("k", [0, 1, 6])
def test_budgets_bound_the_hits(k):
    ps = _diag_patterns()
    seqs = [r.codes() for r in pango_records(3)]
    hits, sites = search(ps, seqs, k, 0)
    assert (sites.mismatches[hits.site] + sites.unknown[hits.site]).max() <= k


@pytest.mark.parametrize("k", [1, 2, 3])
def test_seed_index_engine_finds_the_same_sites(k):
    """The seed-index engine (for large non-redundant texts) reports exactly the mismatch-only sites of the
    window-cache engine, on real isolates that carry ambiguity codes."""
    from oligolab.assays import read_assays
    from oligolab.engine import SeedEngine
    from oligolab.sequences import read_fasta

    from conftest import ARTIC, GENBANK

    oligos = read_assays([DIAG_ASSAYS, ARTIC]).oligos
    ps = PatternSet.from_oligos([o.name for o in oligos], [o.sequence for o in oligos])
    seqs = [r.codes() for r in list(read_fasta(GENBANK))[:25]]
    hits, sites = search(ps, seqs, k, 0)
    expected = {(int(g), int(p), int(sites.pattern[x]), int(sites.mismatches[x]), int(sites.unknown[x]))
                for g, p, x in zip(hits.genome, hits.pos, hits.site)}
    engine = SeedEngine(ps, k, threads=2)
    codes, ends = pack_batch(seqs)
    got_hits = engine.search_codes(codes, ends)
    engine.close()
    s = engine.sites
    got = {(int(g), int(p), int(s.pattern[x]), int(s.mismatches[x]), int(s.unknown[x]))
           for g, p, x in zip(got_hits.genome, got_hits.pos, got_hits.site)}
    assert len(expected) > 25 * 200  # (247 oligos, a few lost or weakened in some isolates)
    assert got == expected


def test_cuda_path_gives_the_same_sites():
    """The CUDA filter (run here under numba's CUDA simulator: CI has no GPU) + CPU verification reports the
    same sites as the CPU engine, gapped search included."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import numpy as np
        from oligolab.engine import Engine, PatternSet, pack_batch, search
        from oligolab.sequences import read_fasta
        recs = [r for r, _ in zip(read_fasta(%r), range(3))]
        seqs = [r.codes()[27500:29800] for r in recs]
        oligos = [("N1-F", "GACCCCAAAATCAGCGAAAT"), ("N1-P", "ACCCCGCATTACGTTTGGTGGACC"),
                  ("N3-P", "AYCACATTGGCACCCGCAATCCTG")]
        ps = PatternSet.from_oligos([o[0] for o in oligos], [o[1] for o in oligos])
        def sites(engine):
            codes, ends = pack_batch(seqs)
            h = engine.search_codes(codes, ends)
            s = engine.sites
            return sorted((int(g), int(p), int(s.pattern[x]), int(s.cost[x]), int(s.mm_mask[x]))
                          for g, p, x in zip(h.genome, h.pos, h.site))
        cpu = sites(Engine(ps, 3, 2, threads=1))
        gpu = sites(Engine(ps, 3, 2, threads=1, device="cuda"))
        assert cpu == gpu and len(cpu) >= 9, (len(cpu), len(gpu))
        print("identical", len(cpu))
    """ % str(PANGO_PATH))
    env = {**__import__("os").environ, "NUMBA_ENABLE_CUDASIM": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "identical" in out.stdout
