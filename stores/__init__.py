"""The conversation store and the conversation locks the servers use (endpoints.yml)."""
