"""What writes events into Kafka: the fair-day simulator (``producers.simulator``) and the
publisher other producers reuse.

Imports ``schemas`` and ``core`` only; never ``streams``, ``dashboards``, ``infra`` or the
command (``tests/unit/test_layering.py`` enforces the rule).
"""
