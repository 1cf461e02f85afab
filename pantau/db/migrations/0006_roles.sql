-- Pantau schema, version 6: the writers' role loses what they never need.
--
-- pantau_writer (0001, 0003) is the group role of the ingest worker and the processing job
-- (`pantau process`); their login is made by `pantau db bootstrap`. Readings and rejects are
-- append-only evidence: no writer may change or delete one, nor an anomaly once found. The
-- derived tables are merged into (INSERT ... ON CONFLICT DO UPDATE), never deleted from. The
-- registry stays read-only (`pantau registry load` runs as the owner) and the API keys were never
-- granted (0004 came after 0001's blanket SELECT): revoked again here so that it is written down.
REVOKE UPDATE, DELETE, TRUNCATE ON readings, rejects, anomalies FROM pantau_writer;
REVOKE DELETE, TRUNCATE ON latest, rollup_1m, rollup_15m, rollup_1h, rollup_1d FROM pantau_writer;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON zones, metrics, sensor_kinds, kind_metrics, sensors,
    schema_migrations FROM pantau_writer;
REVOKE ALL ON api_keys FROM pantau_writer, pantau_reader;
