"""The local stack: a private Mosquitto and a private PostgreSQL + TimescaleDB, no Docker needed."""
