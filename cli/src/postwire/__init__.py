"""The ``postwire`` command: run services, migrate the database, administer accounts."""
