"""oligolab: check assays against genome collections, design CRISPR diagnostics and siRNAs, run the qPCR lab."""

__version__ = "0.1.0"
