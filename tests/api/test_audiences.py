"""api.audiences: whom each alarm rule is for, against the rules the job opens alarms with.

The expected scopes are written out here, from the issue: DLH sees the waste and air alarms,
the tourism office the crowding alarms, engineers the alarms about sensors (offline, battery,
anomalies); admin sees every alarm.
"""

from __future__ import annotations

import pytest

from api import audiences
from processing.alarms import rules

ANOMALY_RULES = {
    "anomaly_spike", "anomaly_level_shift", "anomaly_stuck", "anomaly_drift",
    "anomaly_out_of_range", "anomaly_impossible",
}  # fmt: skip
EXPECTED = {
    "dlh": {"bin_overflow", "bin_predicted_full", "bin_fire_risk", "ispu_unhealthy"},
    "tourism": {"crowding"},
    "engineer": {"sensor_offline", "battery_low", *ANOMALY_RULES},
}


def test_every_rule_the_job_opens_alarms_with_has_an_audience() -> None:
    """A new rule in the job's table fails here until it is given an audience."""
    job_rules = {rule.name for rule in rules(battery_low_v=3.4)}
    assert set(audiences.AUDIENCE) == job_rules
    assert set(audiences.RULES) == job_rules


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_each_role_sees_the_rules_for_it(role: str) -> None:
    assert audiences.visible_rules(role) == sorted(EXPECTED[role])
    for rule in audiences.RULES:
        assert audiences.sees(role, rule) == (rule in EXPECTED[role]), rule
    assert not audiences.sees(role, "a_rule_added_later")


def test_the_scopes_do_not_overlap_and_cover_every_rule() -> None:
    together = [rule for rules_of_role in EXPECTED.values() for rule in rules_of_role]
    assert len(together) == len(set(together))
    assert set(together) == set(audiences.RULES)


def test_admin_sees_every_alarm_even_of_a_rule_not_in_the_table() -> None:
    assert audiences.visible_rules("admin") is None
    assert all(audiences.sees("admin", rule) for rule in (*audiences.RULES, "a_rule_added_later"))
    assert audiences.scope("admin") == "every alarm"


def test_the_scope_in_words_names_the_rules() -> None:
    assert audiences.scope("tourism") == "crowding alarms (crowding)"
    text = audiences.describe()
    for role, rules_of_role in EXPECTED.items():
        assert f"`{role}`" in text
        assert all(rule in text for rule in rules_of_role)
    assert "`admin`: every alarm" in text
