"""``leadloom dashboards push --url URL``: this build into an existing Grafana, one org per
audience (organizers, ops, each delegation), each with its own data source, folder and
dashboards, and the wall playlist in the organizers' org.

Credentials, either:

- a Grafana **server admin** (``--admin-user/--admin-password``, else
  ``LEADLOOM_GRAFANA_ADMIN_USER/_PASSWORD``): basic auth, the only way to create orgs
  (``/api/orgs``) and to reach every org (``X-Grafana-Org-Id``); pushes every org, or the
  one ``--org`` names;
- a **service account token** (``--token``, else ``LEADLOOM_GRAFANA_TOKEN``): a token
  belongs to one org, so ``--org`` is required and must name the token's org.

Each org's data source password is read from ``LEADLOOM_GRAFANA_CH_PASSWORD_<USER>``
(``dashboards.orgs``); a missing one stops the push before anything is written. What is
pushed is ``dashboards.build.build_dashboards(settings)``, the build ``dashboards build``
writes; ``dashboards.push`` decides what changes (see there).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from core.settings import Settings


class PushError(RuntimeError):
    """A push that could not be completed, with a one-line reason."""


def run_push(settings: Settings, url: str, token: str, progress: Callable[[str], None], *,
             admin_user: str = "", admin_password: str = "", org: str | None = None,
             datasource_host: str | None = None, datasource_port: int | None = None,
             not_provisioned: bool = False, set_passwords: bool = False) -> dict[str, Any]:
    """Push the build to Grafana at ``url``; the summary ``--json`` prints:
    ``{"url", "mode", "orgs_pushed", "changed", "writes", "orgs", "datasources", "folders",
    "dashboards", "playlists"}``, each kind an object of name lists ``created`` /
    ``updated`` / ``unchanged``; ``changed`` counts what was created or updated,
    ``writes`` the requests that changed Grafana (0 when it already matched the build).

    Raises :class:`PushError` (one line) when no credentials are given, a token comes
    without ``--org``, ``--org`` names no org, a data source password is missing, the URL
    is not http(s), an org's id differs from the provisioning tree's (unless
    ``not_provisioned``), or Grafana refuses or does not answer a request."""
    from dashboards.build import (
        DATASOURCE_HOST,
        DATASOURCE_PORT,
        WALL_UID,
        build_dashboards,
        datasource_json,
    )
    from dashboards.grafana_http import GrafanaClient, GrafanaError
    from dashboards.orgs import find_org, grafana_orgs, org_key
    from dashboards.push import OrgTarget, push

    admin_user = admin_user or settings.grafana_admin_user
    admin_password = admin_password or settings.grafana_admin_password.get_secret_value()
    token = token or settings.grafana_token.get_secret_value()
    if bool(admin_user) != bool(admin_password):
        raise PushError("an admin user needs its password and a password its user: set both"
                        " LEADLOOM_GRAFANA_ADMIN_USER and LEADLOOM_GRAFANA_ADMIN_PASSWORD")
    admin = bool(admin_user)
    if not admin and not token:
        raise PushError("no credentials: set LEADLOOM_GRAFANA_ADMIN_USER and"
                        " LEADLOOM_GRAFANA_ADMIN_PASSWORD (every org), or LEADLOOM_GRAFANA_TOKEN"
                        " with --org (one org)")
    orgs = grafana_orgs()
    if not admin and org is None:
        raise PushError("a service account token reaches one org: pass --org (organizers,"
                        " ops or a cluster id), or use a server admin's user and password")
    try:
        chosen = orgs if org is None else [find_org(orgs, org)]
    except ValueError as exc:
        raise PushError(str(exc)) from None
    missing = [o.password_env for o in chosen if not os.environ.get(o.password_env)]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise PushError(f"no data source password: set {', '.join(missing[:3])}{more}")

    files = build_dashboards(settings)
    host = datasource_host or DATASOURCE_HOST
    port = datasource_port or DATASOURCE_PORT
    targets = [OrgTarget(o, datasource_json(o, settings, host, port),
                         os.environ[o.password_env],
                         [f for f in files if org_key(f.audience, f.cluster_id) == o.key])
               for o in chosen]
    try:
        client = (GrafanaClient(url, basic=(admin_user, admin_password)) if admin
                  else GrafanaClient(url, token))
        progress(f"pushing {sum(len(t.files) for t in targets)} dashboards in"
                 f" {len(targets)} org(s) to {client.base}"
                 f" as {'server admin ' + admin_user if admin else 'a service account'}")
        report = push(client, targets, WALL_UID, progress, admin_login=admin_user,
                      check_ids=not not_provisioned, set_passwords=set_passwords)
    except (GrafanaError, ValueError) as exc:
        raise PushError(str(exc)) from None
    progress(f"{report.changed} change(s), {client.writes} write request(s)")
    return {"url": client.base, "mode": "admin" if admin else "token",
            "orgs_pushed": [t.org.name for t in targets], "changed": report.changed,
            "writes": client.writes, **report.as_dict()}
