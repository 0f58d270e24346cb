"""Events audit publishes about itself (findings, checkpoint requests): the contracts in
libs/contracts/audit.py. Audit records everyone's events; reading it changes nothing."""

from libs.contracts.audit import CheckpointRequested, FindingRecorded

__all__ = ["CheckpointRequested", "FindingRecorded"]
