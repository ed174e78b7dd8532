"""The long-running owner: ``llmvigil up`` with its HTTP API and scheduled jobs."""
