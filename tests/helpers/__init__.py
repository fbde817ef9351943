"""Real servers and files the tests use (never mocks)."""
