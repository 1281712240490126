"""Shared plumbing of every postwire service: settings, bus schemas and topology,
database access, the HTTP envelope, identity and observability."""
