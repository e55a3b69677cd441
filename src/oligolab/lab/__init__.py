"""The qPCR lab core: instrument runs to per-sample results (see docs/lab.md).

One module per concept: ``run`` (the plate container), ``rdml`` and ``instruments`` (readers/writers),
``platemap``, ``linregpcr`` (Cq and efficiency), ``curves`` (Cq methods, amplification call), ``qc`` (flags),
``rules`` (rule-set files), ``interpret`` (controls and calls), ``audit`` (overrides, sign-off), ``report``
(files) and ``analysis`` (the pipeline). The entry points are :func:`oligolab.lab.analysis.analyze_file`,
:func:`~oligolab.lab.analysis.analyze_run` and :func:`oligolab.lab.report.write_outputs`.
"""
