"""Logs with request and trace ids, OpenTelemetry traces and Prometheus metrics."""
