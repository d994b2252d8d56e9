"""``leadloom dashboards push --url URL [--token TOKEN]``: this build's dashboards into an
existing Grafana, with a team and folder permission per delegation and the wall playlist.

The token is a Grafana service account token (role Admin: it creates folders, teams and
permissions): the ``--token`` argument, else ``LEADLOOM_GRAFANA_TOKEN``. What is pushed is
``dashboards.build.build_dashboards(settings)``, the same build ``dashboards build``
writes; ``dashboards.push`` decides what changes (see there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.settings import Settings


class PushError(RuntimeError):
    """A push that could not be completed, with a one-line reason."""


def run_push(settings: Settings, url: str, token: str,
             progress: Callable[[str], None]) -> dict[str, Any]:
    """Push the build to Grafana at ``url``; the summary ``--json`` prints:
    ``{"url", "changed", "writes", "folders", "dashboards", "teams", "permissions",
    "playlists"}``, each kind an object of name lists ``created`` / ``updated`` /
    ``unchanged``; ``changed`` counts what was created or updated, ``writes`` the
    requests that changed Grafana (0 when it already matched the build).

    Raises :class:`PushError` (one line) when no token is given, the URL is not
    http(s), or Grafana refuses or does not answer a request (the endpoint and Grafana's
    message in the reason)."""
    token = token or settings.grafana_token.get_secret_value()
    if not token:
        raise PushError("no token: set LEADLOOM_GRAFANA_TOKEN or pass --token")
    from dashboards.build import WALL_UID, build_dashboards
    from dashboards.grafana_http import GrafanaClient, GrafanaError
    from dashboards.push import push

    files = build_dashboards(settings)
    try:
        client = GrafanaClient(url, token)
        progress(f"pushing {len(files)} dashboards to {client.base}")
        report = push(client, files, WALL_UID, progress)
    except (GrafanaError, ValueError) as exc:
        raise PushError(str(exc)) from None
    progress(f"{report.changed} change(s), {client.writes} write request(s)")
    return {"url": client.base, "changed": report.changed, "writes": client.writes,
            **report.as_dict()}
