"""Code shared by every onbehalf service."""
