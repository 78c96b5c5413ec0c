"""The plugin's own tests, grouped by the package's layers.

``cascade/`` (the pure model, its parsers, ``explain``), ``probe/`` (the probe service),
``servers/`` (the test servers, sync, asyncio and fake-clock), ``calls/`` (client-call recording,
pairs and verdicts, the audit, the report), ``plugin/`` (the pytest glue, from the outside with
pytester) and ``properties/`` (Hypothesis: the strategies, and properties of the model). The top
level holds checks of the package as a whole (public API, docs, the error table, leaks, scale) and
the helpers the tests share (``timing``, ``rpc``, ``echo_service``, ``dagster_resolvers``).
"""
