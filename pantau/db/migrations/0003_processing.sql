-- Pantau schema, version 3: what the processing pipeline keeps and derives.
-- Detector state (written in the ingest transaction), sensor health, alarm conditions, and the
-- tables DLH and the tourism office read (written by `pantau process`).

-- Per-series detector state, read FOR UPDATE and written back in the transaction that stores the
-- readings: several workers and restarts see one consistent state per series.
CREATE TABLE detector_state (
    sensor_key    integer NOT NULL,
    metric_id     smallint NOT NULL,
    n             bigint NOT NULL,
    mean          double precision NOT NULL,
    var           double precision NOT NULL,
    last_value    double precision NOT NULL,
    last_ts       timestamptz NOT NULL,
    run           bigint NOT NULL,
    pending_value double precision NOT NULL,  -- NaN: none
    pending_ts    timestamptz NOT NULL,
    pending_z     double precision NOT NULL,
    cusum_pos     double precision NOT NULL,
    cusum_neg     double precision NOT NULL,
    PRIMARY KEY (sensor_key, metric_id)
);

-- Online/offline per sensor: last message time from `latest`, the last will from the status topic.
CREATE TABLE sensor_status (
    sensor_key   integer PRIMARY KEY,
    online       boolean NOT NULL,
    since        timestamptz NOT NULL,
    last_seen    timestamptz,
    reason       text NOT NULL CHECK (reason IN ('reporting', 'silent', 'last_will', 'never_seen')),
    will_state   text CHECK (will_state IN ('online', 'offline')),
    will_at      timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Alarms may concern a zone (crowding) rather than a sensor.
ALTER TABLE alarms ALTER COLUMN sensor_key DROP NOT NULL;
ALTER TABLE alarms ADD COLUMN zone_id text REFERENCES zones;
ALTER TABLE alarms ADD CONSTRAINT alarms_subject CHECK ((sensor_key IS NULL) <> (zone_id IS NULL));
DROP INDEX alarms_one_active;
CREATE UNIQUE INDEX alarms_one_active
    ON alarms (coalesce(sensor_key, -1), coalesce(zone_id, ''), rule) WHERE state <> 'cleared';

-- Hysteresis state of each (subject, rule): since when the condition has been bad / good.
CREATE TABLE alarm_conditions (
    subject     text NOT NULL,  -- 's:<sensor_key>' or 'z:<zone_id>'
    rule        text NOT NULL,
    bad_since   timestamptz,
    good_since  timestamptz,
    value       double precision,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, rule)
);

-- Waste (DLH).
CREATE TABLE waste_events (
    sensor_key   integer NOT NULL,
    ts           timestamptz NOT NULL,
    fill_before  double precision NOT NULL,
    fill_after   double precision NOT NULL,
    PRIMARY KEY (sensor_key, ts)
);
SELECT create_hypertable('waste_events', 'ts', chunk_time_interval => INTERVAL '90 days');

CREATE TABLE waste_status (
    sensor_key          integer PRIMARY KEY,
    ts                  timestamptz NOT NULL,
    fill_pct            double precision NOT NULL,
    last_emptied_at     timestamptz,
    fill_rate_pct_per_h double precision,
    predicted_full_at   timestamptz,
    needs_collection    boolean NOT NULL,
    collection_reason   text NOT NULL,
    overflowing         boolean NOT NULL,
    temp_c              double precision,
    fire_risk           text NOT NULL,
    battery_v           double precision,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE waste_village_figures (
    zone_id                     text PRIMARY KEY REFERENCES zones,
    period_days                 integer NOT NULL,
    bins                        integer NOT NULL,
    collections                 integer NOT NULL,
    collections_per_week        double precision NOT NULL,
    mean_fill_at_collection_pct double precision,
    wasted_trips                integer NOT NULL,
    overflow_hours              double precision NOT NULL,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- Air (DLH): ISPU per station and hour, with the sub-indices and US AQI beside it.
CREATE TABLE air_ispu_hourly (
    sensor_key   integer NOT NULL,
    hour         timestamptz NOT NULL,  -- end of the averaging window (start of the next hour)
    ispu         double precision NOT NULL,
    category     text NOT NULL,
    dominant     text NOT NULL,
    beyond_index boolean NOT NULL,
    pm25_ispu    double precision,
    pm10_ispu    double precision,
    so2_ispu     double precision,
    co_ispu      double precision,
    o3_ispu      double precision,
    no2_ispu     double precision,
    pm25_ugm3    double precision,  -- the averaged concentration behind pm25_ispu
    us_aqi       double precision,
    us_category  text,
    window_h     integer NOT NULL,
    PRIMARY KEY (sensor_key, hour)
);
SELECT create_hypertable('air_ispu_hourly', 'hour', chunk_time_interval => INTERVAL '90 days');

-- Tourism: the state of each zone now, and an hourly history for "today vs typical".
CREATE TABLE tourism_status (
    zone_id          text PRIMARY KEY REFERENCES zones,
    ts               timestamptz NOT NULL,
    occupancy        double precision NOT NULL,
    density_ppm2     double precision,
    fruin_level      text,
    capacity_ratio   double precision,
    crowding         text NOT NULL,
    visitors_today   double precision NOT NULL,
    typical_to_date  double precision,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tourism_hourly (
    zone_id         text NOT NULL REFERENCES zones,
    hour            timestamptz NOT NULL,  -- start of the hour
    visitors        double precision NOT NULL,  -- entries during the hour
    visitors_to_date double precision NOT NULL,  -- entries since opening, at the end of the hour
    occupancy       double precision NOT NULL,  -- inside at the end of the hour
    typical_to_date double precision,  -- median of the same hour of the week, previous weeks
    PRIMARY KEY (zone_id, hour)
);
SELECT create_hypertable('tourism_hourly', 'hour', chunk_time_interval => INTERVAL '90 days');

-- When each scheduled job last ran, for the operations dashboard and readiness.
CREATE TABLE job_runs (
    job         text PRIMARY KEY,
    last_run_at timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'
);

GRANT SELECT ON detector_state, sensor_status, alarm_conditions, waste_events, waste_status,
    waste_village_figures, air_ispu_hourly, tourism_status, tourism_hourly, job_runs
    TO pantau_reader, pantau_writer;
GRANT INSERT, UPDATE, DELETE ON detector_state, sensor_status, alarm_conditions, waste_events,
    waste_status, waste_village_figures, air_ispu_hourly, tourism_status, tourism_hourly, job_runs
    TO pantau_writer;
