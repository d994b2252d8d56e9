"""The shared core: settings, Kafka client factories, the ClickHouse store and its queries.

Imports go one way, bottom to top: ``schemas`` <- ``core`` <- ``producers`` / ``streams``
/ ``dashboards`` <- ``leadloom`` (the command). ``core`` imports only ``schemas`` and
third-party libraries; ``tests/unit/test_layering.py`` enforces the rule.
"""
