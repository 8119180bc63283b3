"""A client for the EvidentSource serverless HTTP API (docs/api.md).

    from evidentsource_client import Client, event, subject_equals

    client = Client("http://127.0.0.1:3000")
    client.create_database("flights")
    seats = subject_equals("flight-42")
    client.decide_and_append("flights", seats, lambda events: [
        event("https://example.com/seats", "seat-reserved",
              f"seat-{len(events) + 1}", subject="flight-42")])

The Kafka side (async commands, reading the database events) is in
evidentsource_client.kafka, imported on its own: it needs kafka-python and
grpcio-tools, which the HTTP client does not.
"""

from .client import MAX_QUERY_LIMIT, Client
from .dcb import DEFAULT_DCB_ATTEMPTS
from .errors import (ApiError, ClientError, ContentionError, DecodeError, ErrorCode,
                     RequestError, TransportError)
from .model import (Decided, EventsPage, QueryPage, QueryResult, all_of, any_of,
                    at_least, at_most, event, event_type_equals, event_type_starts_with,
                    revision, stream_equals, stream_starts_with, subject_equals,
                    subject_starts_with, within)
from .retry import RetryPolicy

__all__ = [
    "Client", "MAX_QUERY_LIMIT", "DEFAULT_DCB_ATTEMPTS", "RetryPolicy",
    "ClientError", "ApiError", "ErrorCode", "TransportError", "DecodeError",
    "RequestError", "ContentionError",
    "Decided", "EventsPage", "QueryPage", "QueryResult",
    "event", "revision", "stream_equals", "stream_starts_with", "subject_equals",
    "subject_starts_with", "event_type_equals", "event_type_starts_with", "all_of",
    "any_of", "at_most", "at_least", "within",
]
