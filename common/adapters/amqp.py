"""pika connection parameters from the settings' broker addresses (TLS with `amqps://`).

RABBITMQ_URL may list several addresses, comma-separated (the nodes of a cluster). Every
RabbitMQ connection of the system is opened from the list this module builds, and
`pika.BlockingConnection` given a list tries each address in turn, so a client that
reconnects after losing its node lands on the next one that answers.
"""

from __future__ import annotations

import ssl

import pika

from common.settings import Settings


def rabbitmq_parameters(settings: Settings) -> list[pika.URLParameters]:
    """One parameters object per broker address, in the order of RABBITMQ_URL (or one from
    the RABBITMQ_* parts). `amqps://` is TLS, verifying each server's certificate against
    its own host name. Every RabbitMQ connection starts here."""
    return [_parameters(url) for url in settings.rabbitmq_urls]


def _parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    if params.ssl_options is not None and params.ssl_options.server_hostname is None:
        context = params.ssl_options.context or ssl.create_default_context()
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    return params
