"""Grafana dashboards, alert rules and provisioning for Pantau, built as code and checked."""
