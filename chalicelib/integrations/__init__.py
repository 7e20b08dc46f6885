"""Who calls the bridge: callers' tokens, and how each integration's webhooks prove their sender."""
