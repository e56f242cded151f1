"""Local Slack and Teams endpoints that check every message's shape and inject faults (see server.py)."""
