"""Input channels of the withdrawal-help assistant."""
