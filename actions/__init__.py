"""Built-in actions, one module each, registered through the ``runbook_engine.actions``
entry points exactly like third-party plugins."""
