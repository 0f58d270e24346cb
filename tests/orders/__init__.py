"""Orders: cancelling, and placing against a locked cart."""
