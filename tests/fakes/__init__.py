"""Loopback fakes of the external services Stepline talks to (see common.py)."""
