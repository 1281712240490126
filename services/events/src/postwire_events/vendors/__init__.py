"""Vendor compatibility surfaces: each vendor's wire format over the same domain code as /v1."""
