"""Grafana dashboards as code: the organizer wall, one dashboard per delegation, the ops view.

``dashboards.build.build_dashboards(settings)`` is the one build that ``leadloom dashboards
build`` writes as a provisioning tree and ``leadloom dashboards push`` sends to a running
Grafana (ARCHITECTURE.md, "Dashboards").

Imports ``schemas`` and ``core`` only (its panels read the registry's tables and views);
never ``producers``, ``streams``, ``infra`` or the command.
"""
