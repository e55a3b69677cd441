"""`oligolab sirna`: siRNA duplexes against a disease transcript, ranked the way a drug team would rank them.

One module per concept:

| module | concept |
|---|---|
| ``transcripts`` | target and off-target mRNAs (FASTA/GenBank), their CDS, gene and regions |
| ``inputs`` | readers of the optional inputs: variants (VCF/table), miRNA seeds, reference siRNAs |
| ``rules`` | the knowledge files: sequence/safety rules and penalties, modification patterns |
| ``chemistry`` | duplex strands of a site (19+2, 21/23) and their modification notation |
| ``figures`` | per-site sequence figures: GC, runs, seed-duplex stability, immune motifs |
| ``offtarget`` | near-perfect off-targets (the project's seed-index engine), 3' UTR seed matches, orthologs |
| ``design`` | the pipeline: candidates -> efficacy (``oligolab.models.sirna_efficacy``) -> checks -> ranking |
| ``report`` | the result's files in memory: tables, summary, HTML report, order sheet |
| ``cli`` | the ``oligolab sirna`` command; it writes the files (one output-folder transaction) |

Conventions: the *site* is the 19-nt target on the mRNA (sense, 5'->3'); the *guide* (antisense) is its reverse
complement, guide position 1 pairing with the site's last base; the seed is guide positions 2-8, whose target is
site positions 12-18. The library returns a :class:`~oligolab.sirna.design.SirnaResult`; only ``cli`` writes.
"""

from .chemistry import Duplex, duplex_strands, modified_notation
from .design import SirnaInputs, SirnaOptions, SirnaResult, design_sirnas, locate_known
from .rules import load_patterns, load_sirna_rules
from .transcripts import SITE, Transcript, gene_symbol, longest_orf, read_transcripts

__all__ = ["SITE", "Duplex", "SirnaInputs", "SirnaOptions", "SirnaResult", "Transcript", "design_sirnas",
           "duplex_strands", "gene_symbol", "load_patterns", "load_sirna_rules", "locate_known", "longest_orf",
           "modified_notation", "read_transcripts"]
