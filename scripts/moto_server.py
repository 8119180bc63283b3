"""moto's server with DynamoDB's transaction guarantees restored.

moto's TransactWriteItems deep-copies every table it touches and restores
the copy on cancellation, without a lock: under concurrent requests one
transaction's rollback can erase another's commit, two transactions can both
pass their conditions, and each call costs time in proportion to the table.
Real DynamoDB transactions are serializable and cost in proportion to the
items they touch. So this launcher
- handles one request at a time (serializable, like DynamoDB), and
- checks every condition of a TransactWriteItems before applying any write,
  which needs no rollback and no copy.
The storage layer's commit protocol relies on these guarantees, and its
concurrency tests check them.

Usage: python moto_server.py [-H 127.0.0.1] [-p PORT]
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

import moto.dynamodb.models as models


def transact_write_items(self, transact_items):
    """Validate everything, check every condition, then apply: all or nothing."""
    if len(transact_items) > 100:
        raise models.TooManyTransactionsException()
    seen = set()
    checks = []
    ops = []
    for item in transact_items:
        if len(item) > 1:
            raise models.TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        table = self.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {table.hash_key_attr: attrs[table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = attrs[table.range_key_attr]
        else:
            key = op["Key"]
        unique = (op["TableName"], str(dict(sorted(key.items()))))
        if unique in seen:
            raise models.MultipleTransactionsException()
        seen.add(unique)
        condition = op.get("ConditionExpression")
        outcome = (None, None, None)
        if condition is not None:
            current = self.get_item(op["TableName"], key)
            check = models.get_filter_expression(
                condition,
                op.get("ExpressionAttributeNames"),
                op.get("ExpressionAttributeValues"),
            )
            if not check.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                outcome = ("ConditionalCheckFailed", "The conditional request failed", old)
        checks.append(outcome)
        ops.append((op_type, op, key))
    if any(code is not None for code, _, _ in checks):
        raise models.TransactionCanceledException(checks)
    for op_type, op, key in ops:
        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        if op_type == "Put":
            self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                          expression_attribute_values=values)
        elif op_type == "Delete":
            self.delete_item(op["TableName"], key, expression_attribute_names=names,
                             expression_attribute_values=values)
        elif op_type == "Update":
            self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                             expression_attribute_names=names, expression_attribute_values=values)


def serialized(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
            # Materialize the body inside the lock: WSGI bodies may be lazy.
            return [b"".join(app(environ, start_response))]

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    models.DynamoDBBackend.transact_write_items = transact_write_items
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialized(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
