"""One Grafana organization per audience: the organizers, ops, and each delegation.

Why orgs: in open-source Grafana any member of an org can send any SQL to any data source
of that org (per-data-source permissions are Enterprise only), so a folder permission is
not a data boundary. The boundary is the ClickHouse user a data source logs in as; an org
per delegation keeps each delegation's viewers away from every other data source.

Each org (:class:`GrafanaOrg`) holds exactly one data source, uid
:data:`dashboards.query.DATASOURCE_UID` (uids are unique per org in Grafana, so every
dashboard's fixed uid resolves to its own org's data source), logging in as the org's
ClickHouse user (``organizer``, ``ops``, ``delegation_<cluster_id>``: the LeadLoom users
file or a ClickHouse server's users) with the password from the environment variable
``LEADLOOM_GRAFANA_CH_PASSWORD_<USER>`` (upper-cased user name).

Org ids: file provisioning names an org by numeric id only and cannot create one. The
tree assumes the ids a fresh Grafana gives when ``dashboards push`` creates the orgs in
build order after its "Main Org." (id 1): organizers 2, ops 3, the delegations 4.. in
``CLUSTERS`` order (:func:`grafana_orgs`). ``dashboards push`` checks the ids it finds
against these before it writes anything (a shifted id would provision one delegation's
data source, with its password, into another delegation's org).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.reference import CLUSTERS

FIRST_ORG_ID = 2  # a fresh Grafana holds "Main Org." as id 1; ours come after it
PASSWORD_ENV_PREFIX = "LEADLOOM_GRAFANA_CH_PASSWORD_"
ORGANIZERS_KEY, OPS_KEY = "organizers", "ops"


@dataclass(frozen=True)
class GrafanaOrg:
    """One org of the build: ``key`` is "organizers", "ops" or a cluster id."""

    key: str
    name: str  # the org's name in Grafana: its identity for the push (stable, no language)
    org_id: int  # the id the provisioning tree gives it
    ch_user: str  # the ClickHouse user its data source logs in as
    cluster_id: str | None  # the delegation's cluster, else None

    @property
    def password_env(self) -> str:
        """The environment variable holding ``ch_user``'s password (Grafana and push)."""
        return PASSWORD_ENV_PREFIX + self.ch_user.upper()


def grafana_orgs() -> list[GrafanaOrg]:
    """Every org in build order (organizers, ops, delegations by ``CLUSTERS``)."""
    orgs = [GrafanaOrg(ORGANIZERS_KEY, "LeadLoom organizers", FIRST_ORG_ID, "organizer", None),
            GrafanaOrg(OPS_KEY, "LeadLoom ops", FIRST_ORG_ID + 1, "ops", None)]
    for n, cluster in enumerate(CLUSTERS):
        orgs.append(GrafanaOrg(cluster.id, f"LeadLoom delegation {cluster.id}",
                               FIRST_ORG_ID + 2 + n, f"delegation_{cluster.id}", cluster.id))
    return orgs


def org_key(audience: str, cluster_id: str | None) -> str:
    """The org a dashboard of ``audience`` belongs to (``dashboards.build`` audiences)."""
    if audience == "delegation":
        if cluster_id is None:
            raise ValueError("a delegation dashboard needs its cluster id")
        return cluster_id
    if audience not in (ORGANIZERS_KEY, OPS_KEY):
        raise ValueError(f"unknown audience {audience!r}")
    return audience


def find_org(orgs: Sequence[GrafanaOrg], key: str) -> GrafanaOrg:
    """The org with ``key``; ``ValueError`` (one line, the keys listed) if none."""
    for org in orgs:
        if org.key == key:
            return org
    raise ValueError(f"no org {key!r}: one of {', '.join(o.key for o in orgs)}")
