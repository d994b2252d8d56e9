"""The contracts of the whole product: events, identity records, reference data, the registry.

The bottom layer: ``schemas`` imports nothing of the project. Everything else may import
it (``tests/unit/test_layering.py`` enforces the rule).
"""
