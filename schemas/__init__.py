"""The contracts of the whole product: events, reference data and the registry."""
