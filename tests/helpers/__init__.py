"""Helpers shared by several test modules (imported as `helpers.<module>`)."""
