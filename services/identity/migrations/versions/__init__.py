"""The identity service's revisions, one straight line from the baseline (<service>_<NNNN> ids)."""
