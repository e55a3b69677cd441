"""The order sheet: every oligo a laboratory buys to run the designed assays, 5'->3'.

* primers as DNA (the T7 promoter included on the forward primer of RNA-targeting assays; FIP/BIP as one
  oligo F1c+F2 / B1c+B2);
* each crRNA twice, as the laboratory chooses: a synthetic RNA (the enzyme's direct repeat + spacer) or a DNA
  template for in-vitro transcription (the reverse complement of T7 promoter + crRNA, annealed to the shared
  top-strand promoter oligo; the transcript starts with the promoter's GG), with the shared promoter oligo once.
"""

from __future__ import annotations

import pandas as pd

from ..knowledge import amplification
from ..sequences import reverse_complement
from .model import DesignedAssay
from .scoring import crrna

COLUMNS = ["assay", "rank", "item", "kind", "role", "sequence_5to3", "length_nt", "notes"]


def order_sheet(assays: list[DesignedAssay]) -> pd.DataFrame:
    ivt = amplification()["ivt"]
    rows = []
    need_promoter = False
    for rank, a in enumerate(assays, 1):
        for o in a.primers:
            seq = o.full_sequence.upper()
            kind = "DNA oligo"
            note = o.notes
            if o.tail:
                note = f"{len(o.tail)}-nt T7 promoter tail + {len(o.sequence)}-nt binding part; " + note
            if o.parts:
                note = f"{o.role} = {'F1c' if o.role == 'FIP' else 'B1c'} ({len(o.parts[0])} nt) + " \
                       f"{'F2' if o.role == 'FIP' else 'B2'} ({len(o.parts[1])} nt); " + note
            rows.append([a.name, rank, o.name, kind, o.role, seq, len(seq), note])
        for o in a.guides:
            rna = crrna(a.enzyme, o.sequence)
            rows.append([a.name, rank, o.name, "RNA oligo (synthetic crRNA)", "crRNA", rna, len(rna),
                         f"{a.enzyme.name} direct repeat ({len(a.enzyme.direct_repeat)} nt) + spacer "
                         f"({len(o.sequence)} nt)"])
            template = reverse_complement(ivt["promoter_transcribed"] + rna.replace("U", "T"))
            rows.append([a.name, rank, o.name + "-IVT", "DNA oligo (IVT template)", "crRNA template", template,
                         len(template), "alternative to the synthetic crRNA: anneal to the T7 top-strand oligo and "
                         "transcribe; the crRNA then starts with 5'-GG"])
            need_promoter = True
    if need_promoter:
        seq = ivt["promoter_top_strand"]
        rows.append(["(all)", 0, "T7-top-strand", "DNA oligo", "IVT promoter", seq, len(seq),
                     "shared by every IVT template"])
    return pd.DataFrame(rows, columns=COLUMNS)
