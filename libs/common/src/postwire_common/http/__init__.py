"""The HTTP edge shared by every service: envelope, error mapping, auth dependencies."""
