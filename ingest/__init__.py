"""The ingest worker: MQTT in, validated columnar batches, one database transaction, then ack."""
