"""Reading evidentsource-database-events as the contract promises it
(docs/contract.md): at-least-once, so a re-delivered event (same ce_id) is
skipped and must be byte-identical; per database, Created first, each
Transacted's ce_basis the previous ce_revision, Deleted last (a re-created
database starts over); the protobuf body agreeing with the headers and key.
"""

import re

from .kafka import EVENT_KINDS, fingerprint, header_map, single

RFC3339_MILLIS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class DatabaseEvents:
    """What a consumer has read of the database events so far.

    read(message) per kafka-python message, in the order consumed; a
    database's events all sit on one partition, so that order is theirs.
    """

    def __init__(self, database_pb2):
        self.database_pb2 = database_pb2
        self.seen_ids = {}  # ce_id -> fingerprint
        self.last_revision = {}  # database -> revision, None once deleted
        self.duplicates = 0
        self.deletions = 0

    def read(self, message):
        """Returns (database, entry, problems) for an event read the first
        time, None for a re-delivery. `entry` is {type, id, basis, revision,
        batch_id, event_count, partition}; `problems` lists breaks of the
        per-database order (the event is taken all the same, so one gap is
        reported once). Raises ValueError for a message that is malformed,
        or a ce_id again with other bytes."""
        headers = header_map(message)
        h = lambda name: single(headers, name)  # noqa: E731
        if message.key is None:
            raise ValueError("no key (the database name)")
        database = message.key.decode("utf-8")
        kind = EVENT_KINDS.get(h("ce_type"))
        if kind is None:
            raise ValueError(f"ce_type {h('ce_type')!r} is not a database event")

        ce_id, printed = h("ce_id"), fingerprint(message)
        if ce_id in self.seen_ids:
            if self.seen_ids[ce_id] != printed:
                raise ValueError(f"ce_id {ce_id} again, but not byte-identical")
            self.duplicates += 1
            return None
        self.seen_ids[ce_id] = printed

        entry = self._decode(message, database, kind, headers, h)
        return database, entry, self._continue(database, entry)

    def _decode(self, message, database, kind, headers, h):
        if h("ce_specversion") != "1.0":
            raise ValueError(f"ce_specversion {h('ce_specversion')!r}")
        if not (h("ce_source") or "").endswith(f"/db/{database}"):
            raise ValueError(f"ce_source {h('ce_source')!r} does not end in /db/{database}")
        if not RFC3339_MILLIS_UTC.match(h("ce_time") or ""):
            raise ValueError(f"ce_time {h('ce_time')!r} is not RFC 3339 UTC millis")
        content_type = h("ce_datacontenttype")
        if content_type != h("content-type"):
            raise ValueError("ce_datacontenttype and content-type differ")

        entry = {"type": kind, "id": h("ce_id"), "basis": None, "revision": None,
                 "batch_id": None, "event_count": None, "partition": message.partition}
        value = message.value or b""
        if kind == "deleted":
            if content_type != "application/octet-stream" or value:
                raise ValueError("deleted: expected an empty application/octet-stream body")
            for absent in ("ce_subject", "ce_basis", "ce_revision"):
                if absent in headers:
                    raise ValueError(f"deleted carries {absent}")
            return entry
        if content_type != "application/protobuf":
            raise ValueError(f"content type {content_type!r}")
        entry["basis"], entry["revision"] = int(h("ce_basis")), int(h("ce_revision"))
        if kind == "created":
            body = self.database_pb2.Database()
            body.ParseFromString(value)
            if (body.name, body.basis, body.revision) != (database, 0, 0) or \
                    entry["basis"] != 0 or entry["revision"] != 0:
                raise ValueError(f"created body {body.name}@{body.basis}/{body.revision}")
        else:
            body = self.database_pb2.BatchSummary()
            body.ParseFromString(value)
            entry["batch_id"], entry["event_count"] = body.id, body.event_count
            if body.id != h("ce_subject") or body.database != database or \
                    (body.basis, body.revision) != (entry["basis"], entry["revision"]) or \
                    body.revision - body.basis != body.event_count:
                raise ValueError(f"batch body disagrees with the headers: {body}")
        return entry

    def _continue(self, database, entry):
        """The order problems `entry` makes for its database; moves it on."""
        last = self.last_revision.get(database)
        kind = entry["type"]
        if kind == "created":
            self.last_revision[database] = 0
            return [f"{database}: created while open at {last}"] if last is not None else []
        if last is None:
            return [f"{database}: {kind} before created"]
        if kind == "transacted":
            self.last_revision[database] = entry["revision"]
            if entry["basis"] != last:
                return [f"{database}: gap, basis {entry['basis']} after {last}"]
            return []
        self.last_revision[database] = None
        self.deletions += 1
        return []
