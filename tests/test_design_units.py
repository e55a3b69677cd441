"""The design building blocks against independent truths on real data: the projection against the Pango
alignment shipped with the genomes, guide pre-scores against `oligolab check` calls, primer pre-scores against
`oligolab check` calls, and recombinant-aware lineage ancestry against the alias key."""

from __future__ import annotations

import numpy as np
import pytest

from oligolab.assays import Assay, AssaySet, Oligo
from oligolab.check import CheckOptions
from oligolab.design.candidates import KEY_MASK, generate_guides, motif_table, window_values
from oligolab.design.collection import ABSENT, BASE_MASK, DELETED, INSERT_FLAG, Reference, project, read_collection
from oligolab.design.evaluate import check_coverage
from oligolab.design.primers import PrimerFactory, PrimerRules, design_table
from oligolab.knowledge import get_enzyme, load_rules
from oligolab.lineages import Lineages
from oligolab.sequences import encode, read_fasta

from conftest import ALIAS_KEY, PANGO, REFERENCE, pango_records


@pytest.fixture(scope="module")
def reference():
    return next(iter(read_fasta(REFERENCE)))


def test_projection_reproduces_the_pango_alignment(reference):
    """The Pango consensus genomes are shipped aligned to the reference ('-' = deletion). Projecting the
    gap-free genomes must give the same base at every column where the alignment has a base (indels may sit
    at an equivalent place inside a repeat) and the same number of deleted columns."""
    ref = Reference.from_record(reference)
    n = 0
    for rec in read_fasta(PANGO, keep_gaps=True):
        n += 1
        if n % 40:
            continue
        aligned = np.frombuffer(rec.seq, dtype=np.uint8)
        gap = aligned == ord("-")
        row, rc, unknown = project(ref, encode(rec.seq.replace(b"-", b"")))
        assert not rc and unknown == 0
        truth = encode(rec.seq.replace(b"-", b"N")).copy()
        base = (row & 0x7F)
        both = (~gap) & (base < 4) & (truth < 4)
        mismatched = np.flatnonzero(both & (base != truth))
        # an equivalent indel placement shifts a few columns next to a deletion, never more
        assert len(mismatched) <= 6, (rec.id, mismatched[:10])
        inner = np.flatnonzero(~gap)
        inner_gap = gap[inner[0]:inner[-1] + 1].sum()
        assert (base == DELETED).sum() == inner_gap, rec.id
        assert ((base == ABSENT).sum()) == inner[0] + (len(gap) - 1 - inner[-1]), rec.id


@pytest.fixture(scope="module")
def collection(reference, tmp_path_factory):
    recs = pango_records(160)
    path = tmp_path_factory.mktemp("units") / "g.fasta"
    path.write_text("".join(f">{r.id}\n{r.text()}\n" for r in recs))
    return read_collection([path], reference), path


@pytest.mark.parametrize("enzyme_name", ["LbCas12a", "LwaCas13a", "AacCas12b", "Un1Cas12f1", "PspCas13b"])
@pytest.mark.parametrize("region", [(28000, 29600), (21500, 22500)])  # N (with ORF8/N deletions), spike NTD
def test_guide_prescores_equal_check_calls(enzyme_name, region, collection, reference):
    """For guides that bind some genomes but not all (where rules and indels matter), the genomes the
    candidate kernel says a guide binds are those where `check` calls it detected: exactly, for guides read in
    the frame most genomes share at their site; never more, for guides seen only in a genome whose indel
    shifts the frame (the check may find them a few nt away, the kernel does not look there)."""
    col, path = collection
    enzyme = get_enzyme(enzyme_name)
    cands = generate_guides(col, enzyme, load_rules(), columns=region)
    partial = np.flatnonzero((cands.n_binds > 0) & (cands.n_binds < col.n))
    full = np.flatnonzero(cands.n_binds == col.n)
    pick = list(partial[:: max(1, len(partial) // 30)][:30]) + list(full[:5])
    assert len(pick) >= 10
    assays = AssaySet([Assay(f"g{i}", [Oligo(f"g{i}", f"g{i}", "crRNA", cands.spacer(i), "", enzyme.name, "t")])
                       for i in pick])
    cov = check_coverage(assays, [path], reference, CheckOptions())
    order = [cov.genome_ids.index(g) for g in col.ids]
    c5, _, _ = enzyme.oligo_context()
    exact = 0
    for k, i in enumerate(pick):
        mine = np.unpackbits(cands.binds[i])[: col.n].astype(bool)
        theirs = cov.calls[order, k] == 0
        assert not (mine & ~theirs).any(), cands.spacer(i)
        j = int(cands.column[i])
        v = window_values(col.bases, j, j + 1, cands.footprint, c5, enzyme.spacer_length, motif_table(enzyme),
                          int(cands.strand[i]))[:, 0] & KEY_MASK
        keys, counts = np.unique(v, return_counts=True)
        mode = int(keys[np.argmax(counts)])
        x = mode ^ int(cands.key[i])
        differ = sum(1 for p in range(enzyme.spacer_length) if (x >> (2 * p)) & 3)
        if differ <= 4:  # the frame most genomes share (a shifted frame differs at most positions)
            exact += 1
            # a genome with an indel inside the site may be credited by the check a few nt away (documented)
            site = col.bases[:, j:j + cands.footprint]
            indel = ((site & BASE_MASK) == DELETED).any(axis=1) | ((site & INSERT_FLAG) != 0).any(axis=1)
            assert (mine == theirs)[~indel].all(), (cands.spacer(i), int(mine.sum()), int(theirs.sum()))
    assert exact >= len(pick) * 0.6


def test_primer_prescores_equal_check_calls(collection, reference):
    """Primer coverage (check primer rules on each variant of the site) against `check` on PCR pairs."""
    col, path = collection
    factory = PrimerFactory(col, load_rules())
    spec = PrimerRules.from_table(design_table("pcr"))
    prof = col.profile()
    variable = np.flatnonzero(prof.differ > 0)
    primers = []
    for c in variable[variable > 1000][:400:20]:
        for strand in (0, 1):
            p = factory.make(int(c) - 10, int(c) + 10, strand, spec)  # a variable column inside the primer
            if p is not None and p.n_binds < col.n:
                primers.append(p)
    assert len(primers) >= 5
    # pair each primer with a perfectly conserved partner 100 nt away so the assay call is the primer's call
    assays = []
    for k, p in enumerate(primers):
        lo = p.start + 100 if p.strand == 0 else p.start - 100
        partner = next(q for d in range(0, 200) for q in [factory.make(lo + d, lo + d + 20, 1 - p.strand, spec)]
                       if q is not None and q.n_binds == col.n)
        f, r = (p, partner) if p.strand == 0 else (partner, p)
        assays.append(Assay(f"p{k}", [Oligo(f"p{k}F", f"p{k}", "forward", f.sequence, source="t"),
                                      Oligo(f"p{k}R", f"p{k}", "reverse", r.sequence, source="t")]))
    cov = check_coverage(AssaySet(assays), [path], reference, CheckOptions())
    order = [cov.genome_ids.index(g) for g in col.ids]
    for k, p in enumerate(primers):
        mine = np.unpackbits(p.binds)[: col.n].astype(bool)
        theirs = cov.calls[order, k] == 0
        assert (mine == theirs).all(), (p.sequence, int(mine.sum()), int(theirs.sum()))


def test_recombinants_with_an_omicron_parent_descend_from_b_1_1_529():
    lin = Lineages(ALIAS_KEY)
    assert lin.has_ancestor("JN.1", "B.1.1.529")  # an alias of B.1.1.529.2.86.1.1
    assert lin.has_ancestor("XBB.1.5", "B.1.1.529")  # recombinant of two BA.2 descendants
    assert lin.has_ancestor("EG.5.1", "B.1.1.529")  # alias of a recombinant's descendant (XBB.1.9.2.5.1)
    assert lin.has_ancestor("XD", "B.1.1.529")  # Delta x BA.1
    assert not lin.has_ancestor("XA", "B.1.1.529")  # B.1.1.7 x B.1.177
    assert not lin.has_ancestor("AY.4", "B.1.1.529")  # Delta
    assert not lin.descends_from("XBB.1.5", "B.1.1.529")  # plain descent stays plain
