"""`oligolab sirna`: siRNA duplexes against disease transcripts, ranked the way a drug team would rank them, and
given duplexes (a team's, a competitor's, an approved drug) scored the same way.

One module per concept:

| module | concept |
|---|---|
| ``transcripts`` | mRNAs read from FASTA/GenBank, their CDS, gene and regions |
| ``transcriptome`` | GTF/GFF3 annotations: exons and CDS mapped onto spliced transcripts |
| ``index`` | the off-target transcriptome index (`oligolab sirna index`): transcripts, CDS/UTRs, 3' UTR seeds |
| ``targets`` | the transcripts to design against, by id or gene (MANE Select), with their variants |
| ``inputs`` | readers of the optional inputs: variants (VCF/table), miRNAs (FASTA/table), reference siRNAs |
| ``duplexes`` | reader of given duplexes (CSV/TSV/FASTA, plain or modified notation) |
| ``rules`` | the knowledge files: sequence/safety rules, penalties, seed model, modification patterns |
| ``chemistry`` | duplex strands of a site (19+2, 21/23), the modification notation written and read back |
| ``candidates`` | designed or given duplexes on a target; target pairing (mismatches, wobbles) of given ones |
| ``figures`` | per-site sequence figures: GC, runs, seed-duplex stability, immune motifs |
| ``offtarget`` | near-perfect off-targets (the project's seed-index engine), seed matches, orthologs |
| ``evaluate`` | efficacy (``oligolab.models.sirna_efficacy``), checks, penalties, the ranked table |
| ``design`` | the pipelines: design and score, one off-target search for all targets |
| ``report`` | the result's files in memory: tables, summary, HTML report, order sheet |
| ``cli`` | the ``oligolab sirna`` commands (design, ``score``, ``index``); they write the files |

Data flow: readers (transcripts, index, inputs, duplexes) -> candidates -> engine (off-targets) -> evaluate ->
report. Conventions: the *site* is the 19-nt target on the mRNA (sense, 5'->3'); the *guide* (antisense) pairs
with it, guide position 1 facing the site's last base; the seed is guide positions 2-8, whose target is site
positions 12-18. The library returns :class:`~oligolab.sirna.design.SirnaResult` objects; only ``cli`` writes.
"""

from .chemistry import Duplex, decode_notation, duplex_strands, modified_notation
from .design import (
    PREDICTION_SCOPE,
    SirnaInputs,
    SirnaOptions,
    SirnaResult,
    design_sirnas,
    design_targets,
    locate_known,
    score_duplexes,
)
from .index import TranscriptIndex, build_index, load_index
from .rules import load_patterns, load_sirna_rules
from .transcripts import SITE, Transcript, gene_symbol, longest_orf, read_transcripts

__all__ = [
    "PREDICTION_SCOPE",
    "SITE",
    "Duplex",
    "SirnaInputs",
    "SirnaOptions",
    "SirnaResult",
    "Transcript",
    "TranscriptIndex",
    "build_index",
    "decode_notation",
    "design_sirnas",
    "design_targets",
    "duplex_strands",
    "gene_symbol",
    "load_index",
    "load_patterns",
    "load_sirna_rules",
    "locate_known",
    "longest_orf",
    "modified_notation",
    "read_transcripts",
    "score_duplexes",
]
