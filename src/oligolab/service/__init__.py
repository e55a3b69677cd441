"""The lab web service (``oligolab serve``): plate upload, background analysis by the :mod:`oligolab.lab` core,
review, sign-off, exports and a hash-chained audit trail, over SQLite (default) or PostgreSQL.

Records and rules:
:mod:`.db` (tables, engine, Alembic migrations in ``migrations/``), :mod:`.auth` (passwords, sessions, roles,
CSRF, sign-in delay), :mod:`.accounts` (password change, user and lab administration), :mod:`.audit` (the audit
trail as a hash chain), :mod:`.rulesets` (assays, lab rule sets, the frozen rule set a batch keeps),
:mod:`.uploads` (checking and storing an upload, duplicates), :mod:`.analysis` (result versions: one stored
document per version, content hash, analysis processes), :mod:`.worker` (the queue), :mod:`.review`
(corrections, release rules, sign-off), :mod:`.exports` (a stored version's report, CSV and FHIR with its
release state, through :mod:`oligolab.lab.exports`), :mod:`.verify` (``oligolab serve verify``: every break
named), :mod:`.summary` (daily summary), :mod:`.watch` (assay watch), :mod:`.process` (processes that die with
the service, port check).

The lab's day (issue 17): :mod:`.day_db` (its tables), :mod:`.specimens`, :mod:`.worklists`, :mod:`.labels`,
:mod:`.clinic` and :mod:`.delivery` (release to the clinic: HL7 v2 and FHIR, with retries), :mod:`.qcview`
(QC over time), :mod:`.training`, :mod:`.i18n` (translations, time zones), :mod:`.backup`.

Web: :mod:`.app` (wiring: settings, errors, headers, routers), :mod:`.web` (what routes share: session, user,
permissions, CSRF, rendering), :mod:`.api` (the JSON API) with :mod:`.schemas` (typed bodies), :mod:`.pages`
(the bench's pages) with :mod:`.views` (plate grid, curves), :mod:`.admin_pages`, :mod:`.day_routes`.

Command: :mod:`.cli` (``oligolab serve``, ``serve verify``, ``serve backup``, ``serve restore``).
"""
