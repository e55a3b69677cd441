"""Exports of per-sample results, shared by the command line (``oligolab lab export``) and the web service.

Modules: :mod:`.calls` (the one mapping from a final call to its report text, action and coded value),
:mod:`.release` (preliminary / final / corrected / amended / cancelled, and the value a change replaces),
:mod:`.csv` (spreadsheet-safe per-sample CSV), :mod:`.fhir` (HL7 FHIR R4 Observations), :mod:`.clinical` (one
specimen's released result), :mod:`.hl7v2` (HL7 v2.5.1 ORU^R01), :mod:`.fhir_transaction` (the clinic's FHIR
transaction bundle: Patient, Specimen, ServiceRequest, Observation, DiagnosticReport), :mod:`.folder`
(exports of an ``oligolab lab analyze`` output folder; its ``FORMATS`` table is the list of export formats).
Codes are data: ``oligolab/knowledge/lab-exports.toml``.
"""
