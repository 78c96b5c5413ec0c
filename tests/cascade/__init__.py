"""The cascade model: resolution, checks, the override parsers, and ``explain``."""
