"""Configuration: the environment (settings), the SSM parameters (campaigns, integrations, Fuse's
credentials, secrets), and the one place the bridge's collaborators are built."""
