"""Client-call recording, verdicts, the deadline audit and the suite report.

Layer contract: imports grpc, ``cascade``, ``servers`` (to read the servers' records) and
``_errors``; never pytest or hypothesis.

Modules: ``_recorder`` (``ClientCall`` and which test a call belongs to), ``_hooks`` and
``_recording`` (the wrapt wrappers on grpc's channel classes, installed and removed), ``_sites``
(call sites), ``_verdicts`` (client/server pairs), ``_audit`` (calls without a usable deadline),
``_report`` (the summary). The public names are exported by :mod:`pytest_grpc_deadlines`.
"""
