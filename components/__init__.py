"""Custom NLU components of the withdrawal-help assistant (registered with DefaultV1Recipe)."""
