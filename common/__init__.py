"""Shared package: domain rules, adapters and services used by every entry point."""
