"""Stream processing: pure validation/enrichment/aggregation, the Faust app, and the sink."""
