"""Whom each alarm is for: the rule -> audience table that scopes ``/v1/alarms`` by role.

DLH (the environment agency) gets the waste and air alarms, the tourism office the crowding
alarms, engineers the alarms about the sensors themselves (offline, battery, anomalies); admin
gets every alarm, those of rules this table does not know included. The rule names are the
ones ``pantau process`` stores in ``alarms.rule`` (README, "Health and alarms").
"""

from __future__ import annotations

from processing.anomalies import KIND_NAMES

WASTE = ("bin_overflow", "bin_predicted_full", "bin_fire_risk")
AIR = ("ispu_unhealthy",)
CROWDING = ("crowding",)
SENSOR = ("sensor_offline", "battery_low", *(f"anomaly_{kind}" for kind in KIND_NAMES))

# rule -> the role it is for (besides admin)
AUDIENCE: dict[str, str] = {
    **dict.fromkeys(WASTE + AIR, "dlh"),
    **dict.fromkeys(CROWDING, "tourism"),
    **dict.fromkeys(SENSOR, "engineer"),
}
RULES: tuple[str, ...] = tuple(sorted(AUDIENCE))
WHAT = {"dlh": "waste and air", "tourism": "crowding", "engineer": "sensor"}


def visible_rules(role: str) -> list[str] | None:
    """The rules whose alarms ``role`` sees; None: every alarm (admin)."""
    if role == "admin":
        return None
    return [rule for rule in RULES if AUDIENCE[rule] == role]


def sees(role: str, rule: str) -> bool:
    return role == "admin" or AUDIENCE.get(rule) == role


def scope(role: str) -> str:
    """What ``role`` sees, in words: ``"waste and air alarms (bin_fire_risk, ...)"``."""
    rules = visible_rules(role)
    if rules is None:
        return "every alarm"
    if not rules:
        return "no alarms"
    return f"{WHAT.get(role, role)} alarms ({', '.join(rules)})"


def describe() -> str:
    """The scoping of every role, for the OpenAPI text."""
    roles = ", ".join(f"`{role}`: {scope(role)}" for role in WHAT)
    return f"{roles}; `admin`: every alarm."
