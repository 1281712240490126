"""Logs, metrics and traces, set up the same way in every service."""
