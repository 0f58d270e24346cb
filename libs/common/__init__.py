"""The foundation every service stands on: settings, database, auth, policy, events, NATS."""
