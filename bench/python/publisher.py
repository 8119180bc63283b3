"""The stream publisher's job written the way a Python team would write it:
boto3's TypeDeserializer for the stream images, the generated protobuf
classes, confluent-kafka for Kafka.

    publisher.py EVENT_JSON PRODUCER_CONFIG_JSON TOPIC BASE_URI ROUNDS

Reads a Lambda DynamoDB stream event (already parsed, as the Lambda runtime
hands it to a handler), then ROUNDS times: turns each head record into a
CloudEvent in Kafka's binary mode (the same headers, key and protobuf body
as the Rust publisher), produces them all and waits for every delivery.
Prints one JSON line per round: {"records": N, "published": N, "seconds": S,
"cpu_seconds": C}, C being the process's user + system CPU over the same window.
The producer settings are the Rust publisher's, passed in as JSON.
"""

import json
import resource
import sys
import time
import uuid
from datetime import datetime, timezone

from boto3.dynamodb.types import TypeDeserializer
from confluent_kafka import Producer
from google.protobuf.timestamp_pb2 import Timestamp

from evidentsource.v1 import database_pb2  # generated from proto/evidentsource/v1/database.proto by protoc (grpcio-tools)

ID_NAMESPACE = uuid.UUID("0c5bd5de-8f7b-4f54-9d5e-7a3c2f0e9b41")
DESERIALIZER = TypeDeserializer()
IMAGE_FIELDS = (
    "name", "state", "created_at", "basis", "revision", "revision_time", "batch_id", "deleted_at",
)


def timestamp(millis):
    t = Timestamp()
    t.FromMilliseconds(int(millis))
    return t


def rfc3339(millis):
    moment = datetime.fromtimestamp(int(millis) / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(millis) % 1000:03d}Z"


def ts_key(millis):
    t = timestamp(millis)
    return f"{t.seconds}.{t.nanos:09d}"


def to_message(record, base_uri):
    """(key, value, headers) for a head record, or None to skip it."""
    change = record["dynamodb"]
    if change["Keys"].get("sk", {}).get("S") != "head":
        return None
    if record["eventName"] not in ("INSERT", "MODIFY"):
        return None
    # Only the attributes the event is built from (as the Rust handler
    # reads them): the head's other attributes, such as its binary recent
    # facts (base64 in Lambda's JSON, which TypeDeserializer does not take),
    # are none of the publisher's business.
    new_image = change["NewImage"]
    image = {k: DESERIALIZER.deserialize(new_image[k]) for k in IMAGE_FIELDS if k in new_image}
    name = image["name"]
    basis, revision = int(image["basis"]), int(image["revision"])
    source = f"{base_uri.rstrip('/')}/db/{name}"
    if image["state"] == "deleted":
        event_id = uuid.uuid5(
            ID_NAMESPACE,
            f"deleted\n{name}\n{ts_key(image['created_at'])}\n{ts_key(image['deleted_at'])}",
        )
        headers = [
            ("ce_specversion", "1.0"),
            ("ce_id", str(event_id)),
            ("ce_source", source),
            ("ce_type", "com.evidentsource.database.deleted.v1"),
            ("ce_time", rfc3339(image["deleted_at"])),
            ("ce_datacontenttype", "application/octet-stream"),
            ("content-type", "application/octet-stream"),
        ]
        return name, b"", headers
    if revision == 0:
        body = database_pb2.Database(
            name=name,
            created_at=timestamp(image["created_at"]),
            basis=basis,
            revision=revision,
            revision_timestamp=timestamp(image["revision_time"]),
        )
        event_id = uuid.uuid5(ID_NAMESPACE, f"created\n{name}\n{ts_key(image['created_at'])}")
        headers = [
            ("ce_specversion", "1.0"),
            ("ce_id", str(event_id)),
            ("ce_source", source),
            ("ce_type", "com.evidentsource.database.created.v1"),
            ("ce_time", rfc3339(image["created_at"])),
            ("ce_datacontenttype", "application/protobuf"),
            ("content-type", "application/protobuf"),
            ("ce_revision", str(revision)),
            ("ce_basis", str(basis)),
        ]
        return name, body.SerializeToString(), headers
    batch_id = image["batch_id"]
    body = database_pb2.BatchSummary(
        id=batch_id,
        database=name,
        basis=basis,
        revision=revision,
        event_count=revision - basis,
        recorded_time=timestamp(image["revision_time"]),
    )
    event_id = uuid.uuid5(ID_NAMESPACE, f"transacted\n{name}\n{batch_id}\n{revision}")
    headers = [
        ("ce_specversion", "1.0"),
        ("ce_id", str(event_id)),
        ("ce_source", source),
        ("ce_type", "com.evidentsource.batch.transacted.v1"),
        ("ce_time", rfc3339(image["revision_time"])),
        ("ce_datacontenttype", "application/protobuf"),
        ("content-type", "application/protobuf"),
        ("ce_subject", batch_id),
        ("ce_revision", str(revision)),
        ("ce_basis", str(basis)),
    ]
    return name, body.SerializeToString(), headers


def handle(event, producer, topic, base_uri):
    """Publishes a batch; returns how many were delivered."""
    delivered = []
    failed = []

    def on_delivery(err, _msg):
        (failed if err else delivered).append(1)

    for record in event["Records"]:
        message = to_message(record, base_uri)
        if message is None:
            continue
        key, value, headers = message
        while True:
            try:
                producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush()
    if failed:
        raise RuntimeError(f"{len(failed)} deliveries failed")
    return len(delivered)


def cpu_seconds():
    """User + system CPU of this process, every thread (librdkafka's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    event_path, config_path, topic, base_uri, rounds = sys.argv[1:6]
    with open(event_path) as f:
        event = json.load(f)
    with open(config_path) as f:
        config = json.load(f)
    producer = Producer(config)
    for _ in range(int(rounds)):
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        published = handle(event, producer, topic, base_uri)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_before
        print(
            json.dumps({"records": len(event["Records"]), "published": published, "seconds": seconds, "cpu_seconds": cpu}),
            flush=True,
        )


if __name__ == "__main__":
    main()
