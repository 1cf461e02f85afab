"""`pantau dashboards push`: the folder, data source, dashboards and alert rules, into a Grafana.

For a Grafana that is already running (and not started with this repository's provisioning
files). Everything is addressed by uid and written only when it differs from what Grafana
has, so a second push changes nothing: GET, compare, then create (POST) or update (PUT /
POST with overwrite). Objects that Grafana loaded from provisioning files are left alone
(Grafana refuses API changes to them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards import alerts
from dashboards.panels import DS_UID, FOLDER_TITLE, FOLDER_UID, Json
from pantau.errors import ConfigError

logger = logging.getLogger(__name__)

# A grafana_client.GrafanaApi; its methods carry no type annotations.
GrafanaApi = Any

# Keys Grafana sets itself on a dashboard; comparing them would make every push an update.
_DASHBOARD_OWN = {"id", "version"}


@dataclass(frozen=True)
class Change:
    what: str  # "folder pantau", "dashboard pantau-sampah", ...
    action: str  # created, updated, unchanged, kept (provisioned)

    def __str__(self) -> str:
        return f"{self.action:<9} {self.what}"


def contains(have: Any, want: Any) -> bool:
    """Whether ``have`` (Grafana's copy) already holds everything in ``want``.

    Dicts may have more keys in ``have`` (Grafana adds ids, versions, defaults); lists must
    match element by element.
    """
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            k in have and contains(have[k], v) for k, v in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(have) == len(want)
            and all(contains(h, w) for h, w in zip(have, want, strict=True))
        )
    return bool(have == want)


def _get(call: Any, *args: Any) -> Any:
    """The object, or None when Grafana answers 404."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def push_folder(api: GrafanaApi) -> Change:
    what = f"folder {FOLDER_UID}"
    folder = _get(api.folder.get_folder, FOLDER_UID)
    if folder is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return Change(what, "created")
    if folder.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        return Change(what, "updated")
    return Change(what, "unchanged")


def push_datasource(api: GrafanaApi, body: Json) -> Change:
    """Create or update the data source; without a password an existing one keeps its own."""
    what = f"data source {DS_UID}"
    existing = _get(api.datasource.get_datasource_by_uid, DS_UID)
    if existing is None:
        if "secureJsonData" not in body:
            raise ConfigError(
                f"Grafana has no data source {DS_UID} and no password was given for it",
                "set PANTAU_GRAFANA_DB_PASSWORD to the password of Grafana's database login",
            )
        api.datasource.create_datasource(body)
        return Change(what, "created")
    if existing.get("readOnly"):
        return Change(what, "kept (provisioned)")
    public = {k: v for k, v in body.items() if k != "secureJsonData"}
    if contains(existing, public) and "secureJsonData" not in body:
        return Change(what, "unchanged")
    api.datasource.update_datasource_by_uid(DS_UID, body)
    return Change(what, "updated")


def push_dashboard(api: GrafanaApi, dashboard: Json) -> Change:
    what = f"dashboard {dashboard['uid']}"
    existing = _get(api.dashboard.get_dashboard, dashboard["uid"])
    wanted = {k: v for k, v in dashboard.items() if k not in _DASHBOARD_OWN}
    if existing is not None:
        if existing.get("meta", {}).get("provisioned"):
            return Change(what, "kept (provisioned)")
        if contains(existing.get("dashboard"), wanted):
            return Change(what, "unchanged")
    api.dashboard.update_dashboard(
        {
            "dashboard": {**wanted, "id": None},
            "folderUid": FOLDER_UID,
            "overwrite": True,
            "message": "pantau dashboards push",
        }
    )
    return Change(what, "created" if existing is None else "updated")


def push_rule_group(api: GrafanaApi, group: Json) -> Change:
    body = alerts.api_group(group)
    what = f"alert rule group {FOLDER_UID}/{body['title']} ({len(body['rules'])} rules)"
    existing = _get(api.alertingprovisioning.get_rule_group, FOLDER_UID, body["title"])
    if existing is not None and contains(existing, body):
        return Change(what, "unchanged")
    # PUT replaces the whole group: rules are created, updated or removed by uid.
    api.alertingprovisioning.update_rule_group(FOLDER_UID, body["title"], body)
    return Change(what, "created" if existing is None else "updated")


def push(
    api: GrafanaApi, *, datasource: Json | None, dashboards: list[Json], groups: list[Json]
) -> list[Change]:
    """Folder, then data source (unless None), dashboards and rule groups; what each became."""
    changes = [push_folder(api)]
    if datasource is not None:
        changes.append(push_datasource(api, datasource))
    changes += [push_dashboard(api, d) for d in dashboards]
    changes += [push_rule_group(api, g) for g in groups]
    return changes


def push_all(
    api: GrafanaApi,
    url: str,
    *,
    datasource: Json | None,
    dashboards: list[Json],
    groups: list[Json],
) -> list[Change]:
    """:func:`push`, with Grafana's and the network's errors turned into what to do."""
    try:
        return push(api, datasource=datasource, dashboards=dashboards, groups=groups)
    except (GrafanaException, OSError) as exc:
        status = getattr(exc, "status_code", None)
        denied = status in (401, 403)
        raise ConfigError(
            f"Grafana at {url} answered {status or 'nothing'}: {exc}",
            "give a token (--token or PANTAU_GRAFANA_TOKEN) of a service account with the "
            "Admin role"
            if denied
            else "check that Grafana runs at --url (PANTAU_GRAFANA_URL) and reaches its "
            "database; run with -v to see each request",
        ) from exc
