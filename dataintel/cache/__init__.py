"""Shared caching: the Redis connection and (later) the two-level cache."""
