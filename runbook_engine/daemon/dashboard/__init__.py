"""The web dashboard of ``runbook serve``, at ``/ui/``: server-rendered HTML (jinja2,
autoescaped), one hand-written stylesheet, and no script at all.

::

    pages      routes: login/logout, executions (filters, paging), an execution (timeline,
               inputs, outputs, logs, failures, step graph, approve/reject, cancel),
               documents, parameters, schedules
    web        templates, security headers, forms; the guard every page goes through
    sessions   signed session cookies and CSRF tokens (HMAC, no server-side state)
    passwords  scrypt hashes for the configuration file (``runbook dashboard-password``)
    views      the timeline and other values worked out before rendering
    graph_svg  the step graph drawn as an inline SVG on the server
    providers  the protocols of the optional back-ends (Parameter Store, schedules) and
               the document listings

This package's ``__init__`` imports nothing, so that ``daemon.config`` can check password
hashes without loading the web stack.
"""
