"""Buyer identity resolution: a pure core (normalise, block, score, union-find).

No Kafka here: the stream workers and ``leadloom resolve`` drive the same engine.
"""
