"""Sensor simulators: realistic Jepara traffic over MQTT, to test Pantau without hardware."""
