"""Pantau: IoT sensor ingestion and monitoring backend for smart-city programs."""

__version__ = "0.1.0"
