"""The lab web service (``oligolab serve``): plate upload, background analysis by the :mod:`oligolab.lab` core,
review, sign-off, exports and an append-only audit trail, over SQLite (default) or PostgreSQL.

Modules: :mod:`.db` (tables and migrations), :mod:`.auth` (users, sessions, roles, CSRF), :mod:`.batches`
(the service's library API: uploads, versions, review, exports), :mod:`.worker` (the queue the service owns),
:mod:`.watch` (assay watch: ``oligolab check`` on the bundled genomes), :mod:`.app` (FastAPI routes and pages).
"""
