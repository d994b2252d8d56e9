"""Short-lived aliases of the named queries (``core.queries``) under their old names.

Only for callers not yet moved to ``core.queries.run`` (tests/reliability/ledger.py);
delete this module once nothing imports it.
"""

from __future__ import annotations

from typing import Any

from core import queries as q
from core.queries import LEAD_COUNTERS, Query

__all__ = [
    "LEAD_COUNTERS", "Query", "badges_seen", "buyer_of_alias", "buyers_resolved",
    "dead_letters_by_reason", "events_stored", "leads_by_cluster", "stream_leads_by_cluster",
    "unique_buyers_by_cluster",
]


def _alias(named: q.NamedQuery) -> Any:
    def run(query: Query, db: str) -> Any:
        return q.run(named, query, db)

    run.__name__ = named.name
    run.__doc__ = named.description
    return run


events_stored = _alias(q.EVENTS_STORED)
dead_letters_by_reason = _alias(q.DEAD_LETTERS_BY_REASON)
leads_by_cluster = _alias(q.LEADS_BY_CLUSTER)
stream_leads_by_cluster = _alias(q.STREAM_LEADS_BY_CLUSTER)
badges_seen = _alias(q.BADGES_SEEN)
buyers_resolved = _alias(q.BUYERS_RESOLVED)
buyer_of_alias = _alias(q.BUYER_OF_ALIAS)
unique_buyers_by_cluster = _alias(q.UNIQUE_BUYERS_BY_CLUSTER)
