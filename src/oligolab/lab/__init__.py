"""The qPCR lab core: instrument runs to signed per-sample results (see docs/lab.md).

One module per concept, data flowing one way (readers -> curves -> calls -> interpretation -> files):

* ``run``: the plate container (:class:`~oligolab.lab.run.Run`: readings + layout), gap repair;
* ``formats/``: instrument readers as a registry, one module per format (RDML, .eds, QuantStudio/7500, 7500
  SDS, LightCycler 480, CFX/wide, long, RDES) with ``detect`` and ``read``, and their shared limits
  (``formats/common``); ``platemap``: plate maps, and the curve-by-curve layout of a run without one;
* ``linregpcr``: LinRegPCR (Cq TD0, PCR efficiency; rdmlpython parity); ``calling``: the diagnostic
  amplification call (amplified / not amplified / review with a reason); ``curves``: Cq methods, the call and
  QC per run; ``qc``: curve flags;
* ``rules`` (+ ``rulesets/``): rule-set files; ``interpret``: controls, run validity and per-sample calls;
* ``audit``: the append-only, hash-chained log of overrides and sign-offs (the commit point of a result);
* ``analysis``: the pipeline as one call; ``report``: tables, result.json and the printable HTML report, with
  ``figures`` (curves drawn as SVG); ``store``: the result folder written so that results and audit log agree
  after a kill;
  ``cli``: the ``oligolab lab`` command;
* ``exports/``: per-sample results for hospital systems (CSV, FHIR, HL7 v2, release states);
  ``qc_trend``: Westgard rules on
  control Cq series; ``worklist``: plates laid out from waiting specimens; ``accessioning``: specimens from
  CSV lists and FHIR orders; ``schema/``: the RDML XSDs.

The entry points are :func:`oligolab.lab.analysis.analyze_file`, :func:`~oligolab.lab.analysis.analyze_run`
and :func:`oligolab.lab.report.write_outputs`.
"""
