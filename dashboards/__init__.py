"""Grafana dashboards as code (a later issue fills this package).

Imports ``schemas`` and ``core`` only (its panels run the named queries of the core);
never ``producers``, ``streams``, ``infra`` or the command.
"""
