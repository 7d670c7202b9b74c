"""Test and benchmark helpers that start real services (not imported by the platform)."""
