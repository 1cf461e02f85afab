"""`pantau process`: the scheduled side of processing (offline sensors, alarms, domain figures)."""
