"""Submits commands to the suite's async commands topic with kafka-python and
waits for each one's response on the async responses topic, as a producer
application would (docs/async-commands.md).

    python submit_commands.py --database orders [--summary out.json]

The commands, each under a fresh correlation id, and what must come back:

1. create the database (protobuf)                     -> succeeded, revision 0
2. transact two orders as JSON, order-1 must be new   -> succeeded, 0 -> 2
3. transact one event as protobuf, order-1 still at 2 -> succeeded, 2 -> 3
4. order-1 must be new again (protobuf)                -> FAILED_PRECONDITION
5. bytes that are no TransactRequest                   -> INVALID_ARGUMENT
6. delete the database (JSON)                          -> succeeded

Commands keyed by different correlation ids may land on different
partitions and run concurrently, so each waits for the previous response.
Exits 1 naming the step that went wrong.
"""

import argparse
import json
import sys
import uuid

from kafka import KafkaProducer

import use_client  # noqa: F401  (the repository's clients/python, unless installed)
from evidentsource_client import kafka as es

SOURCE = "https://shop.example.com/orders"
COMMANDS_SOURCE = "https://shop.example.com/python-example"
CLIENT_ID = "evidentsource-python-example"


def order_placed(cloudevents_pb2, subject, total):
    """One event of a transaction, as a protobuf CloudEvent."""
    event = cloudevents_pb2.CloudEvent(
        id=f"{subject}-{uuid.uuid4()}", source=SOURCE, spec_version="1.0",
        type="com.shop.order.placed", text_data=json.dumps({"total": total}))
    event.attributes["subject"].ce_string = subject
    event.attributes["datacontenttype"].ce_string = "application/json"
    return event


def steps(database, commands_pb2, cloudevents_pb2):
    """(name, ce_type, content type, value, expected) for each command."""
    def unique(subject, max_revision):
        return commands_pb2.AppendCondition(
            selector=commands_pb2.EventSelector(subject_equals=subject), max=max_revision)

    create = commands_pb2.CreateDatabaseRequest(database_name=database)
    # The protobuf JSON mapping, written by hand as a client in any language
    # can: uint64 fields are strings, field names are lowerCamelCase.
    transact_json = {
        "databaseName": database,
        "events": [
            {"id": f"order-{n}-{uuid.uuid4()}", "source": SOURCE, "specVersion": "1.0",
             "type": "com.shop.order.placed",
             "attributes": {"subject": {"ceString": f"order-{n}"}},
             "textData": json.dumps({"total": 10 * n})}
            for n in (1, 2)
        ],
        "conditions": [{"selector": {"subjectEquals": "order-1"}, "max": "0"}],
        "transactionId": f"python-{uuid.uuid4()}",
    }
    shipped = commands_pb2.TransactRequest(
        database_name=database, events=[order_placed(cloudevents_pb2, "order-1", 10)],
        conditions=[unique("order-1", 2)], transaction_id=f"python-{uuid.uuid4()}")
    again = commands_pb2.TransactRequest(
        database_name=database, events=[order_placed(cloudevents_pb2, "order-1", 99)],
        conditions=[unique("order-1", 0)], transaction_id=f"python-{uuid.uuid4()}")
    delete = {"databaseName": database}
    protobuf, text = "application/protobuf", "application/json"
    return [
        ("create-database", es.CREATE_DATABASE, protobuf, create.SerializeToString(),
         {"result": "database", "revision": 0}),
        ("transact-json", es.TRANSACT, text, json.dumps(transact_json).encode(),
         {"result": "batch_summary", "basis": 0, "revision": 2}),
        ("transact-protobuf", es.TRANSACT, protobuf, shipped.SerializeToString(),
         {"result": "batch_summary", "basis": 2, "revision": 3}),
        ("transact-conflict", es.TRANSACT, protobuf, again.SerializeToString(),
         {"result": "error", "code": "FAILED_PRECONDITION"}),
        ("malformed-transact", es.TRANSACT, protobuf, b"\xff\xff\xff",
         {"result": "error", "code": "INVALID_ARGUMENT"}),
        ("delete-database", es.DELETE_DATABASE, text, json.dumps(delete).encode(),
         {"result": "database", "revision": 3}),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--summary", metavar="FILE")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for each response")
    args = parser.parse_args()

    try:
        brokers = es.brokers()
        _, commands_pb2, cloudevents_pb2 = es.load_protos()
        consumer = es.responses_reader(brokers, client_id=CLIENT_ID)
    except (ValueError, RuntimeError) as e:
        sys.exit(str(e))
    # acks=all: a command counts as submitted once every replica has it.
    producer = KafkaProducer(bootstrap_servers=brokers, acks="all", client_id=CLIENT_ID)
    summary = {"database": args.database, "responses": {}}
    failures = []
    for name, ce_type, content_type, value, expected in steps(args.database, commands_pb2,
                                                                cloudevents_pb2):
        correlation_id = es.submit(producer, ce_type, value, content_type, COMMANDS_SOURCE)
        got = es.await_response(consumer, correlation_id, commands_pb2, args.timeout)
        if got is None:
            failures.append(f"{name}: no response within {args.timeout} s")
            break
        wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
        print(f"{name:<18} {correlation_id}  {got['type'].rsplit('.', 2)[-2]:<9} "
              f"{got['code'] or ''}{got['basis'] if got['basis'] is not None else ''}"
              f"{' -> ' + str(got['revision']) if got['revision'] is not None else ''}")
        if wrong:
            failures.append(f"{name}: (got, expected) {wrong}")
        summary["responses"][correlation_id] = {"step": name, **got}
    producer.close()
    consumer.close()

    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    for problem in failures:
        print(f"FAIL {problem}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
