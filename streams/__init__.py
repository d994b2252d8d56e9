"""Stream processing: the pure core (validate, rows, leads, identity), the Faust app, the sink.

Imports ``schemas`` and ``core`` only; never ``producers``, ``dashboards``, ``infra`` or
the command (``tests/unit/test_layering.py`` enforces the rule).
"""
