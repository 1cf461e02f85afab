-- Pantau schema, version 7: when Pantau last heard from each sensor, and the processing job's
-- failures per part.

-- The arrival clock of sensor health. heard_at is the commit time (the database's now()) of the
-- newest batch that inserted a reading of the sensor, whatever the readings' own times: a
-- gateway uploading a backlog, or a simulator replaying history, is heard now. A redelivery
-- inserts nothing and is not heard. Written by the ingest writer in the batch's transaction;
-- never moves backwards.
CREATE TABLE sensor_heard (
    sensor_key integer PRIMARY KEY,
    heard_at   timestamptz NOT NULL
);

-- What the job judged by: the newest reading's time (last_seen) and when it was heard.
ALTER TABLE sensor_status ADD COLUMN last_heard timestamptz;

-- Runs in which a part of the job failed (raised, and rolled back only itself), per part, since
-- the job first ran: {"waste": 2, ...}. The last run's errors are in detail.
ALTER TABLE job_runs ADD COLUMN failures jsonb NOT NULL DEFAULT '{}';

GRANT SELECT ON sensor_heard TO pantau_reader, pantau_writer, pantau_api, pantau_grafana;
GRANT INSERT, UPDATE ON sensor_heard TO pantau_writer;
