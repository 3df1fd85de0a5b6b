"""Thin wrappers around one client each: PostgreSQL, Redis, RabbitMQ. No rules inside."""
