"""Golden request logs: what the operator sends to Google, per scenario, reviewed like code (README.md)."""
