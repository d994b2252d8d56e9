"""Lead intelligence: pure models over resolved buyers' signals (issue 9).

``scores``: the lead score of a (buyer, exhibitor) or (buyer, cluster) pair, in Python and as
the same formula in ClickHouse SQL. No Kafka and no store here.
"""
