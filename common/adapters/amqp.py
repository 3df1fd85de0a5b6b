"""pika connection parameters from the settings' broker URL (TLS with `amqps://`)."""

from __future__ import annotations

import ssl

import pika

from common.settings import Settings


def rabbitmq_parameters(settings: Settings) -> pika.URLParameters:
    """Parameters from RABBITMQ_URL (or the RABBITMQ_* parts). `amqps://` is TLS, verifying
    the server's certificate against its host name. Every RabbitMQ connection starts here."""
    params = pika.URLParameters(settings.rabbitmq_url)
    if params.ssl_options is not None and params.ssl_options.server_hostname is None:
        context = params.ssl_options.context or ssl.create_default_context()
        params.ssl_options = pika.SSLOptions(context, server_hostname=params.host)
    return params
