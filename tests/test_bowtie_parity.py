"""Parity with bowtie 1 (`bowtie -v k -a`): for mismatch-only search the hit set is the same.

Uses 60 real Pango genomes (gaps removed, as bowtie needs) and every non-degenerate oligo of the shipped
diagnostic assays and ARTIC v5.3.2 scheme (bowtie treats an IUPAC code in a read as a mismatch, oligolab as
the bases it stands for, so degenerate oligos are left out of the comparison).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from oligolab.assays import read_assays
from oligolab.engine import PatternSet, search

from conftest import ARTIC, DIAG_ASSAYS, pango_records

pytestmark = pytest.mark.skipif(shutil.which("bowtie") is None or shutil.which("bowtie-build") is None,
                                reason="bowtie 1 not installed (make test installs it)")


def _bowtie_hits(tmp_path, records, oligos, k):
    ref = tmp_path / "genomes.fa"
    with open(ref, "w") as fh:
        for r in records:
            fh.write(f">{r.id}\n{r.text()}\n")
    reads = tmp_path / "oligos.fa"
    with open(reads, "w") as fh:
        for o in oligos:
            fh.write(f">{o.name}\n{o.sequence}\n")
    subprocess.run(["bowtie-build", "-q", "--threads", "2", str(ref), str(tmp_path / "idx")], check=True)
    out = subprocess.run(["bowtie", "-p", "2", "-f", "-v", str(k), "-a", "--suppress", "6,7,8",
                          str(tmp_path / "idx"), str(reads)], check=True, capture_output=True, text=True).stdout
    hits = set()
    for line in out.splitlines():
        name, strand, ref_id, pos = line.split("\t")[:4]
        hits.add((name, ref_id, int(pos), strand))
    return hits


@pytest.mark.parametrize("k", [2, 3])
def test_mismatch_only_hits_equal_bowtie(tmp_path, k):
    records = pango_records(60)
    oligos = [o for o in read_assays([DIAG_ASSAYS, ARTIC]).oligos if not o.is_degenerate]
    assert len(oligos) > 230
    expected = _bowtie_hits(tmp_path, records, oligos, k)
    ps = PatternSet.from_oligos([o.name for o in oligos], [o.sequence for o in oligos])
    hits, sites = search(ps, [r.codes() for r in records], k, 0)
    got = {(oligos[int(sites.pattern[s]) // 2].name, records[int(g)].id, int(p), "+-"[int(sites.pattern[s]) % 2])
           for g, p, s in zip(hits.genome, hits.pos, hits.site)}
    assert len(expected) > 60 * 230  # every oligo binds every genome
    assert got == expected


def test_parity_on_isolates_with_ambiguity_codes(tmp_path):
    """Real GenBank isolates carry N and other ambiguity codes: bowtie reports no alignment over them, and
    oligolab's sites without unknown bases are exactly bowtie's hits."""
    from oligolab.sequences import read_fasta

    from conftest import GENBANK

    records = list(read_fasta(GENBANK))[:120]
    oligos = [o for o in read_assays([DIAG_ASSAYS]).oligos if not o.is_degenerate]
    expected = _bowtie_hits(tmp_path, records, oligos, 3)
    ps = PatternSet.from_oligos([o.name for o in oligos], [o.sequence for o in oligos])
    hits, sites = search(ps, [r.codes() for r in records], 3, 0)
    known = {(oligos[int(sites.pattern[s]) // 2].name, records[int(g)].id, int(p), "+-"[int(sites.pattern[s]) % 2])
             for g, p, s in zip(hits.genome, hits.pos, hits.site) if sites.unknown[s] == 0}
    with_unknown = sum(int(sites.unknown[s] > 0) for s in hits.site)
    assert with_unknown > 0  # the isolates do put ambiguity codes under some sites
    assert known == expected
