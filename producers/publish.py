"""Transitional alias of :mod:`producers.simulator.publish` (the simulator's batch
publishing moved there). Import from the new place; this alias goes once no caller is
left (tests/integration/test_pipeline.py and test_identity_pipeline.py still use it)."""

from producers.simulator.publish import PublishError, PublishReport, publish

__all__ = ["PublishError", "PublishReport", "publish"]
