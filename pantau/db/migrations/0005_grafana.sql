-- Pantau schema, version 5: the read-only role Grafana's data source uses.
--
-- pantau_grafana is a group role without login: `pantau dashboards db-user` creates the login
-- Grafana connects with (read-only by default, with a statement timeout) and grants it this
-- role; `pantau dashboards check` runs every panel and alert query under it. It reads the data
-- and domain tables (and schema_migrations, so `check` can tell a stale schema under Grafana's
-- own login), nothing else: no API keys, no detector state, and of the rejects everything but
-- the raw payload.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pantau_grafana') THEN
        CREATE ROLE pantau_grafana NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO pantau_grafana;
GRANT SELECT ON zones, metrics, sensor_kinds, kind_metrics, sensors, readings, latest,
    rollup_1m, rollup_15m, rollup_1h, rollup_1d, anomalies, alarms, readings_named,
    sensor_status, waste_events, waste_status, waste_village_figures, air_ispu_hourly,
    tourism_status, tourism_hourly, job_runs, schema_migrations
    TO pantau_grafana;
GRANT SELECT (received_at, topic, payload_len, reason, detail, sensor_id, metric) ON rejects
    TO pantau_grafana;
