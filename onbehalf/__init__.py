"""Operator tooling for onbehalf: start the whole system, check policies, read the audit log."""
