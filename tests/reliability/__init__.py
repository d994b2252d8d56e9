"""Reliability tier: a foreign Kafka client (kcat) feeds hostile input and faults to the
pipeline on the real broker; every test measures what was lost, doubled and how long the
pipeline took to settle or recover (see conftest.py for the figures table)."""
