-- Storage policies, only where the server has them. The Apache-2 build of TimescaleDB (the one
-- `pantau stack up` builds on Debian 12) has no compression and no job scheduler; the
-- Timescale-licensed build (the timescale/timescaledb Docker image) has both. Correctness never
-- depends on these: they only save disk.
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        ALTER TABLE readings SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'sensor_key, metric_id',
            timescaledb.compress_orderby = 'ts'
        );
        PERFORM add_compression_policy('readings', INTERVAL '7 days', if_not_exists => true);
        PERFORM add_retention_policy('rejects', INTERVAL '90 days', if_not_exists => true);
    ELSE
        RAISE NOTICE 'TimescaleDB license is %, skipping compression and retention policies',
            coalesce(current_setting('timescaledb.license', true), 'unknown');
    END IF;
END
$$;
