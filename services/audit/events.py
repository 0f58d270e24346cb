"""Events audit publishes: none. Audit records the others'; reading it changes nothing."""
