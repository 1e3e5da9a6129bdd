"""The executor daemon (``runbook serve``): the SSM Automation API over HTTP for boto3 and
the ``aws`` CLI, SigV4 authentication, and workers that share executions through leases.

::

    HTTP POST /  ──► app (body limit, SigV4, X-Amz-Target, policy, model validation)
                       └─► operations (Start/Get/Describe*/Stop/SendAutomationSignal)
                             └─► Engine.start / signal / stop / get, store queries
    WorkerPool ──► store.claim_next ──► Engine.wait(until_waiting=True) ──► release
    GET /metrics (Prometheus), GET /healthz

Modules: ``config`` (the configuration file), ``sigv4`` (signature checks), ``shapes``
(requests checked against botocore's model of SSM), ``operations``, ``app``, ``worker``,
``metrics``, ``logs`` (JSON lines) and ``server`` (runs it all in one event loop).
"""
