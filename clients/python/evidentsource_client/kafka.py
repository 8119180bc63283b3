"""The suite's Kafka side with kafka-python (docs/async-commands.md,
docs/contract.md): submitting async commands and awaiting each one's response
by its ce_correlationid, and reading the database events as the contract
promises them (re-deliveries skipped by ce_id, basis -> revision continuity
per database).

Topic names are the contract's defaults, overridden by the variables the
suite reads (`make dev` writes them to .local/stack.env). The protobuf
modules come from evidentsource_client.protos.load_protos().
"""

import os
import time
import uuid

from .protos import load_protos  # noqa: F401  (re-exported: one import for users)

DATABASE_EVENTS_TOPIC = os.environ.get(
    "DATABASE_EVENTS_KAFKA_TOPIC", "evidentsource-database-events")
ASYNC_COMMANDS_TOPIC = os.environ.get(
    "ASYNC_COMMANDS_KAFKA_TOPIC", "evidentsource-async-commands")
ASYNC_RESPONSES_TOPIC = os.environ.get(
    "ASYNC_RESPONSES_KAFKA_TOPIC", "evidentsource-async-responses")

# Database event types (ce_type).
CREATED = "com.evidentsource.database.created.v1"
TRANSACTED = "com.evidentsource.batch.transacted.v1"
DELETED = "com.evidentsource.database.deleted.v1"
EVENT_KINDS = {CREATED: "created", TRANSACTED: "transacted", DELETED: "deleted"}

# Command types, and their responses' types.
CREATE_DATABASE = "com.evidentsource.command.create-database.v1"
TRANSACT = "com.evidentsource.command.transact.v1"
DELETE_DATABASE = "com.evidentsource.command.delete-database.v1"
SUCCEEDED = "com.evidentsource.command.succeeded.v1"
FAILED = "com.evidentsource.command.failed.v1"


def brokers():
    """KAFKA_BROKERS as a list; ValueError when it is not set."""
    found = [b.strip() for b in os.environ.get("KAFKA_BROKERS", "").split(",") if b.strip()]
    if not found:
        raise ValueError("KAFKA_BROKERS is not set (e.g. `set -a; . .local/stack.env; set +a`)")
    return found


def header_map(message):
    """kafka-python gives headers as a list of (str, bytes); a name may repeat.

    Returns {name: [values]} so that a repeated header is noticed instead of
    silently overwritten.
    """
    found = {}
    for name, value in message.headers or []:
        found.setdefault(name, []).append(value)
    return found


def single(headers, name):
    """The header's value as text, None when absent; ValueError when repeated."""
    values = headers.get(name)
    if values is None:
        return None
    if len(values) != 1:
        raise ValueError(f"header {name} appears {len(values)} times")
    return values[0].decode("utf-8") if values[0] is not None else ""


def fingerprint(message):
    """What a byte-identical duplicate shares: key, headers and value."""
    return (message.key, tuple(message.headers or []), message.value)


# --- async commands ---------------------------------------------------------

def command_headers(ce_type, correlation_id, content_type, source):
    """The binary-mode CloudEvent headers of a command. The response carries
    `correlation_id` back as its ce_correlationid (and key)."""
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", source.encode()),
        ("ce_type", ce_type.encode()),
        ("ce_correlationid", correlation_id.encode()),
        ("ce_datacontenttype", content_type.encode()),
        ("content-type", content_type.encode()),
    ]


def submit(producer, ce_type, value, content_type, source, correlation_id=None,
           timeout=30.0):
    """Produces one command (protobuf or protobuf-JSON bytes) keyed by its
    correlation id, waits for the broker's ack, and returns the id (a fresh
    uuid4 unless given). Use a producer with acks="all": a command counts as
    submitted once every replica has it."""
    correlation_id = correlation_id or str(uuid.uuid4())
    producer.send(ASYNC_COMMANDS_TOPIC, key=correlation_id.encode(), value=value,
                  headers=command_headers(ce_type, correlation_id, content_type, source)
                  ).get(timeout=timeout)
    return correlation_id


def responses_reader(bootstrap_servers, client_id="evidentsource-python-client"):
    """A consumer at the current end of every responses partition, without
    a group: create it before submitting, so no response can come before it."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None,
                             enable_auto_commit=False, client_id=client_id)
    found = consumer.partitions_for_topic(ASYNC_RESPONSES_TOPIC)
    if not found:
        consumer.close()
        raise ValueError(f"topic {ASYNC_RESPONSES_TOPIC} not found")
    partitions = [TopicPartition(ASYNC_RESPONSES_TOPIC, p) for p in found]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)  # resolve "end" now, before anything is sent
    return consumer


def await_response(consumer, correlation_id, commands_pb2, timeout):
    """The first response for `correlation_id` as response_summary() reads
    it, or None after `timeout` seconds. Responses to other commands are
    passed over."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=250).values():
            for message in records:
                h = header_map(message)
                if single(h, "ce_correlationid") != correlation_id:
                    continue
                if message.key != correlation_id.encode():
                    raise ValueError(f"response keyed {message.key!r}")
                return response_summary(commands_pb2, h, message.value or b"")
    return None


def response_summary(commands_pb2, headers, value):
    """An async response as {type, subject, result, code, basis, revision}:
    result is "database", "batch_summary" or "error" (then code is the
    contract's code name)."""
    response = commands_pb2.CommandResponse()
    response.ParseFromString(value)
    result = response.WhichOneof("result")
    entry = {"type": single(headers, "ce_type"), "subject": single(headers, "ce_subject"),
             "result": result, "code": None, "basis": None, "revision": None}
    if result == "database":
        entry["basis"] = response.database.basis
        entry["revision"] = response.database.revision
    elif result == "batch_summary":
        entry["basis"] = response.batch_summary.basis
        entry["revision"] = response.batch_summary.revision
    elif result == "error":
        entry["code"] = commands_pb2.ErrorCode.Name(response.error.code)
    return entry
