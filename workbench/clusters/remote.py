"""Remote deployments (filled in below)."""
