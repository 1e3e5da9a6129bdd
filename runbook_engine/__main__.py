"""``python -m runbook_engine``: the runbook command."""

from runbook_engine.cli import main

main()
