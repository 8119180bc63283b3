"""Reads the suite's database events and async responses with kafka-python,
as an application downstream of EvidentSource would, and checks what the
contract promises (docs/contract.md):

- every database's events sit on the partition that kafka-python's own
  default partitioner (Java-compatible murmur2) computes for the key;
- per database: Created first, each Transacted's ce_basis equal to the
  previous ce_revision, Deleted last (a re-created database starts over);
- the protobuf body agrees with the headers and the key;
- a re-delivered event (same ce_id) is byte-identical, and is skipped;
- both CloudEvents SDK APIs read every message (cloudevents.v1.kafka and
  cloudevents.core.bindings.kafka);
- every async response is keyed by its ce_correlationid and decodes.

    python consume_events.py                      # follow, print, until Ctrl-C
    python consume_events.py --until-deleted 2 --summary out.json

With --until-deleted N it stops once N database deletions were read and
both topics are read to their end, and exits 1 if anything was wrong.
"""

import argparse
import json
import sys
import time

from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.v1 import kafka as ce_v1_kafka
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

import use_client  # noqa: F401  (the repository's clients/python, unless installed)
from evidentsource_client import kafka as es
from evidentsource_client.database_events import DatabaseEvents


class Checker:
    """Everything read so far, and what was wrong with it."""

    def __init__(self, database_pb2, commands_pb2, partition_counts):
        # Dedupe, decoding and per-database order: the client module's.
        self.database_events = DatabaseEvents(database_pb2)
        self.commands_pb2 = commands_pb2
        self.partition_counts = partition_counts
        self.violations = []
        self.events = {}  # database -> [summary entries], in the order read
        self.responses = {}  # correlation id -> summary entry
        self.response_prints = {}  # correlation id -> fingerprint
        self.response_duplicates = 0
        self.sdk_reads = 0

    @property
    def duplicates(self):
        return self.database_events.duplicates + self.response_duplicates

    @property
    def deletions(self):
        return self.database_events.deletions

    def fail(self, message, problem):
        where = f"{message.topic}/{message.partition}@{message.offset}"
        self.violations.append(f"{where}: {problem}")
        print(f"VIOLATION {where}: {problem}", file=sys.stderr)

    def handle(self, message):
        try:
            self.read_with_sdks(message)
            if message.topic == es.DATABASE_EVENTS_TOPIC:
                self.database_event(message)
            else:
                self.response(message)
        except (ValueError, KeyError, UnicodeDecodeError) as e:
            self.fail(message, f"{type(e).__name__}: {e}")

    def read_with_sdks(self, message):
        """Both APIs of the CloudEvents SDK must read the message as we do."""
        headers = {name: value for name, value in message.headers or []}
        value = message.value or b""
        classic = ce_v1_kafka.from_binary(
            ce_v1_kafka.KafkaMessage(headers=headers, key=message.key, value=value),
            data_unmarshaller=lambda data: data,
        )
        current = ce_kafka.from_binary_event(
            ce_kafka.KafkaMessage(headers=headers, key=message.key, value=value)
        )
        ce_id = headers["ce_id"].decode()
        for api, got_id, got_type in [
            ("cloudevents.v1.kafka", classic["id"], classic["type"]),
            ("cloudevents.core.bindings.kafka", current.get_id(), current.get_type()),
        ]:
            if got_id != ce_id or got_type != headers["ce_type"].decode():
                raise ValueError(f"{api} read id {got_id!r} type {got_type!r}")
        if current.get_time() is None:
            raise ValueError("cloudevents.core read no time")
        # The core API returns text when the bytes happen to be UTF-8.
        data = current.get_data()
        data = data.encode() if isinstance(data, str) else (data or b"")
        if classic.get_data() != value or data != value:
            raise ValueError("an SDK read a different value")
        self.sdk_reads += 1

    def database_event(self, message):
        read = self.database_events.read(message)
        if read is None:
            return  # a re-delivery, byte-identical
        database, entry, problems = read
        self.check_partition(message, database)
        for problem in problems:
            self.fail(message, problem)
        self.events.setdefault(database, []).append(entry)
        kind = entry["type"]
        print(f"{database:<24} {kind:<10} {entry['basis']} -> {entry['revision']}  "
              f"{entry['batch_id'] or ''}  (partition {message.partition}, "
              f"offset {message.offset})")

    def check_partition(self, message, database):
        """The partition kafka-python would pick for the key is the one used."""
        count = self.partition_counts[message.topic]
        expected = (murmur2(message.key) & 0x7FFFFFFF) % count
        if message.partition != expected:
            raise ValueError(f"{database} on partition {message.partition}, "
                             f"kafka-python's partitioner says {expected}")

    def response(self, message):
        headers = es.header_map(message)
        correlation_id = es.single(headers, "ce_correlationid")
        if message.key is None or message.key.decode("utf-8") != correlation_id:
            raise ValueError(f"key {message.key!r} is not ce_correlationid {correlation_id!r}")
        fingerprint = es.fingerprint(message)
        if correlation_id in self.response_prints:
            if self.response_prints[correlation_id] != fingerprint:
                raise ValueError(f"second, different response for {correlation_id}")
            self.response_duplicates += 1
            return
        self.response_prints[correlation_id] = fingerprint
        entry = es.response_summary(self.commands_pb2, headers, message.value or b"")
        expected = "error" if entry["type"] == es.FAILED else ("database", "batch_summary")
        if entry["type"] not in (es.SUCCEEDED, es.FAILED) or entry["result"] not in expected:
            raise ValueError(f"response {entry['type']} with result {entry['result']}")
        self.responses[correlation_id] = entry

    def summary(self):
        return {"events": self.events, "duplicates": self.duplicates,
                "responses": self.responses}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--until-deleted", type=int, metavar="N",
                        help="stop after N database deletions and both topics read to the end")
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="with --until-deleted: give up after this many seconds")
    parser.add_argument("--summary", metavar="FILE", help="write what was read as JSON")
    args = parser.parse_args()

    try:
        brokers = es.brokers()
        database_pb2, commands_pb2, _ = es.load_protos()
    except (ValueError, RuntimeError) as e:
        sys.exit(str(e))
    # No consumer group: this reader assigns itself every partition, so it
    # reads from the beginning at once and commits nothing.
    consumer = KafkaConsumer(bootstrap_servers=brokers, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             client_id="evidentsource-python-example")
    topics = [es.DATABASE_EVENTS_TOPIC, es.ASYNC_RESPONSES_TOPIC]
    partitions, counts = [], {}
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        if not found:
            sys.exit(f"topic {topic} not found")
        counts[topic] = len(found)
        partitions += [TopicPartition(topic, p) for p in sorted(found)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)

    checker = Checker(database_pb2, commands_pb2, counts)
    deadline = time.monotonic() + args.timeout
    ends = None
    while True:
        for records in consumer.poll(timeout_ms=500).values():
            for message in records:
                checker.handle(message)
        if args.until_deleted is None:
            continue
        if checker.deletions >= args.until_deleted:
            ends = ends or consumer.end_offsets(partitions)
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
        if time.monotonic() > deadline:
            checker.violations.append(
                f"timed out after {args.timeout} s with {checker.deletions} of "
                f"{args.until_deleted} deletions read")
            break
    consumer.close()

    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(checker.summary(), f, indent=1, sort_keys=True)
    print(f"read {sum(map(len, checker.events.values()))} database events of "
          f"{len(checker.events)} databases, {len(checker.responses)} responses, "
          f"{checker.duplicates} duplicates skipped, {checker.sdk_reads} CloudEvents SDK reads")
    for problem in checker.violations:
        print(f"FAIL {problem}", file=sys.stderr)
    sys.exit(1 if checker.violations else 0)


if __name__ == "__main__":
    main()
