-- Pantau schema, version 4: the API's keys and its database role.

-- API keys: the secret is stored as a SHA-256 digest only. A key is shown once, at creation,
-- as pantau_<key_id>_<secret>; key_id finds the row, the digest proves the secret.
CREATE TABLE api_keys (
    key_id        text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{12}$'),
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('dlh', 'tourism', 'engineer', 'admin')),
    secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

-- The API's role: read-only on the data, plus the one write it makes (acknowledging an alarm)
-- and noting when a key was last used. `pantau api` switches to it on every connection.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pantau_api') THEN
        CREATE ROLE pantau_api NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO pantau_api;
GRANT SELECT ON zones, metrics, sensor_kinds, kind_metrics, sensors, readings, latest,
    rollup_1m, rollup_15m, rollup_1h, rollup_1d, anomalies, alarms, rejects, readings_named,
    sensor_status, waste_events, waste_status, waste_village_figures, air_ispu_hourly,
    tourism_status, tourism_hourly, job_runs, schema_migrations
    TO pantau_api;
GRANT UPDATE (state, acknowledged_at, acknowledged_by) ON alarms TO pantau_api;
GRANT SELECT (key_id, name, role, secret_sha256, revoked_at) ON api_keys TO pantau_api;
GRANT UPDATE (last_used_at) ON api_keys TO pantau_api;
