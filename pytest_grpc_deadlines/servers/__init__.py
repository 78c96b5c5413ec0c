"""The test servers: real in-process grpc servers (sync and asyncio) with delays, gates and
faults, and grpcio-testing's fake-clock server.

Layer contract: imports grpc, ``probe`` (lazily), ``cascade``, ``_context`` and ``_errors``; never
pytest, hypothesis or the ``calls`` layer (the recording learns of server calls through the
observer in ``_core``). Every server is usable without pytest, as a context manager.

Modules: ``_core`` (configuration, behaviour tables, records and every decision a handler makes),
``_sync`` and ``_aio`` (the grpc transports and their waiting primitive), ``_behaviour`` (delays,
jitter, faults), ``_records`` (``ServerCall``), ``_fake`` (``FakeServer``), ``_pool`` (servers
reused across tests). The public names are exported by :mod:`pytest_grpc_deadlines`.
"""
