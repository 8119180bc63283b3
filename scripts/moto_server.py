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

moto's Query also looks at every item of the table (then sorts the
partition) for each call, where DynamoDB seeks in one partition's sorted
keys: a query costs moto time in proportion to the table, so anything
measured on a long history (the condition index, `make bench`) would
measure moto. The launcher keeps each partition's sort keys in order and
hands moto's own Query only the items within the key condition, which it
then checks, pages and projects as before: the same answers, at a cost in
proportion to what the key condition selects.

A request may carry `x-moto-latency-ms: N` (at most 1000): the launcher
waits N ms before queueing it, outside the lock, so requests sent side by
side wait at the same time. `make bench` uses it to stand in for DynamoDB's
own latency, which concurrent requests overlap, next to moto's answers as
they are; nothing else sends it.

`GET /_moto_server/busy` answers the nanoseconds spent handling requests so
far (inside the lock): over a window, how much of it moto was busy, which
tells a run limited by moto's queue from one limited by its clients.

Usage: python moto_server.py [-H 127.0.0.1] [-p PORT]
"""

import argparse
import bisect
import signal
import sys
import time
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

import moto.dynamodb.models as models
from moto.dynamodb.models.table import Table

_table_query = Table.query
_table_put_item = Table.put_item
_table_delete_item = Table.delete_item


def _sort_keys(table, hash_key):
    """The partition's sort keys in order, kept up to date by put and delete."""
    cache = table.__dict__.setdefault("_sort_keys", {})
    keys = cache.get(hash_key)
    if keys is None:
        partition = table.items[hash_key] if hash_key in table.items else {}
        keys = sorted(partition.keys())
        cache[hash_key] = keys
    return keys


def put_item(self, item_attrs, *args, **kwargs):
    item = _table_put_item(self, item_attrs, *args, **kwargs)
    if self.range_key_attr is not None:
        keys = self.__dict__.get("_sort_keys", {}).get(item.hash_key)
        if keys is not None:
            i = bisect.bisect_left(keys, item.range_key)
            if i == len(keys) or keys[i] != item.range_key:
                keys.insert(i, item.range_key)
    return item


def delete_item(self, hash_key, range_key):
    item = _table_delete_item(self, hash_key, range_key)
    if item is not None and range_key is not None:
        keys = self.__dict__.get("_sort_keys", {}).get(hash_key)
        if keys is not None:
            i = bisect.bisect_left(keys, range_key)
            if i < len(keys) and keys[i] == range_key:
                del keys[i]
    return item


def _within(keys, comparison, values):
    """The slice of sorted `keys` a key condition can select (a superset
    when unsure: moto's Query checks the condition again)."""
    op = (comparison or "").upper()
    if op == "BETWEEN" and len(values) == 2:
        return bisect.bisect_left(keys, values[0]), bisect.bisect_right(keys, values[1])
    if op == "BEGINS_WITH" and len(values) == 1:
        lo = bisect.bisect_left(keys, values[0])
        hi = lo
        while hi < len(keys) and keys[hi].cast_value.startswith(values[0].cast_value):
            hi += 1
        return lo, hi
    if len(values) == 1:
        v = values[0]
        if op in ("=", "EQ"):
            return bisect.bisect_left(keys, v), bisect.bisect_right(keys, v)
        if op in ("<", "LT"):
            return 0, bisect.bisect_left(keys, v)
        if op in ("<=", "LE"):
            return 0, bisect.bisect_right(keys, v)
        if op in (">", "GT"):
            return bisect.bisect_right(keys, v), len(keys)
        if op in (">=", "GE"):
            return bisect.bisect_left(keys, v), len(keys)
    return 0, len(keys)


def query(self, hash_key, range_comparison, range_objs, *args, **kwargs):
    index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
    if index_name or self.range_key_attr is None or hash_key is None:
        return _table_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
    keys = _sort_keys(self, hash_key)
    lo, hi = _within(keys, range_comparison, range_objs)
    partition = self.items[hash_key] if hash_key in self.items else {}
    candidates = [partition[k] for k in keys[lo:hi]]
    # moto's Query takes its candidates from all_items(): only these.
    self.all_items = lambda: candidates
    try:
        return _table_query(self, hash_key, range_comparison, range_objs, *args, **kwargs)
    finally:
        del self.all_items


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


BUSY_PATH = "/_moto_server/busy"


def serialized(app):
    lock = threading.Lock()
    # Time spent handling requests (inside the lock), in nanoseconds: how
    # busy the one-at-a-time queue was over a window, for `make bench`.
    busy = [0]

    def handle(environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET" and environ.get("PATH_INFO") == BUSY_PATH:
            body = str(busy[0]).encode()
            start_response(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return [body]
        latency = environ.get("HTTP_X_MOTO_LATENCY_MS")
        if latency:
            try:
                time.sleep(min(max(float(latency), 0.0), 1000.0) / 1000.0)
            except ValueError:
                pass
        with lock:
            started = time.perf_counter_ns()
            try:
                # Materialize the body inside the lock: WSGI bodies may be lazy.
                return [b"".join(app(environ, start_response))]
            finally:
                busy[0] += time.perf_counter_ns() - started

    return handle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    models.DynamoDBBackend.transact_write_items = transact_write_items
    Table.query = query
    Table.put_item = put_item
    Table.delete_item = delete_item
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
