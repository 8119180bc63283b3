"""Reading the database events: re-deliveries skipped only when
byte-identical, and the per-database basis -> revision order checked."""

import collections
import unittest

from evidentsource_client import kafka
from evidentsource_client.database_events import DatabaseEvents
from evidentsource_client.protos import load_protos

Message = collections.namedtuple("Message", "topic partition offset key headers value")
database_pb2, _, _ = load_protos()


def message(database, kind, basis=None, revision=None, ce_id=None, offset=0):
    """A database event as the stream publisher produces it."""
    ce_type = {"created": kafka.CREATED, "transacted": kafka.TRANSACTED,
               "deleted": kafka.DELETED}[kind]
    headers = [("ce_specversion", b"1.0"), ("ce_id", (ce_id or f"{kind}-{revision}").encode()),
               ("ce_source", f"https://evidentsource.com/db/{database}".encode()),
               ("ce_type", ce_type.encode()), ("ce_time", b"2026-01-02T03:04:05.678Z")]
    if kind == "deleted":
        content_type, value = "application/octet-stream", b""
    else:
        content_type = "application/protobuf"
        headers += [("ce_basis", str(basis).encode()), ("ce_revision", str(revision).encode())]
        if kind == "created":
            value = database_pb2.Database(name=database).SerializeToString()
        else:
            batch = f"batch-{revision}"
            headers.append(("ce_subject", batch.encode()))
            value = database_pb2.BatchSummary(
                id=batch, database=database, basis=basis, revision=revision,
                event_count=revision - basis).SerializeToString()
    headers += [("ce_datacontenttype", content_type.encode()),
                ("content-type", content_type.encode())]
    return Message("evidentsource-database-events", 0, offset, database.encode(), headers, value)


class Reading(unittest.TestCase):
    def test_a_database_read_in_order_has_no_problems(self):
        events = DatabaseEvents(database_pb2)
        read = [events.read(m) for m in [
            message("db", "created", 0, 0), message("db", "transacted", 0, 2),
            message("db", "transacted", 2, 3), message("db", "deleted")]]
        self.assertEqual([(r[0], r[1]["type"], r[1]["basis"], r[1]["revision"], r[2])
                          for r in read],
                         [("db", "created", 0, 0, []), ("db", "transacted", 0, 2, []),
                          ("db", "transacted", 2, 3, []), ("db", "deleted", None, None, [])])
        self.assertEqual(read[1][1]["batch_id"], "batch-2")
        self.assertEqual((events.deletions, events.duplicates), (1, 0))

    def test_a_redelivery_is_skipped_only_when_byte_identical(self):
        events = DatabaseEvents(database_pb2)
        events.read(message("db", "created", 0, 0))
        first = message("db", "transacted", 0, 2, ce_id="e-1")
        self.assertIsNotNone(events.read(first))
        # The same bytes at another offset: a re-delivery.
        self.assertIsNone(events.read(first._replace(offset=9)))
        self.assertEqual(events.duplicates, 1)
        with self.assertRaisesRegex(ValueError, "not byte-identical"):
            events.read(message("db", "transacted", 0, 3, ce_id="e-1"))

    def test_breaks_of_the_order_are_reported(self):
        for sequence, problem in [
            ([("transacted", 0, 2)], "db: transacted before created"),
            ([("created", 0, 0), ("transacted", 0, 2), ("transacted", 3, 4)],
             "db: gap, basis 3 after 2"),
            ([("created", 0, 0), ("created", 0, 0)], "db: created while open at 0"),
            ([("deleted", None, None)], "db: deleted before created"),
        ]:
            with self.subTest(problem=problem):
                events = DatabaseEvents(database_pb2)
                problems = []
                for n, (kind, basis, revision) in enumerate(sequence):
                    read = events.read(message("db", kind, basis, revision, ce_id=f"e-{n}"))
                    problems += read[2]
                self.assertEqual(problems, [problem])

    def test_a_body_that_disagrees_with_its_headers_is_refused(self):
        events = DatabaseEvents(database_pb2)
        wrong = message("db", "transacted", 0, 2)
        wrong = wrong._replace(value=database_pb2.BatchSummary(
            id="batch-2", database="db", basis=0, revision=5, event_count=5).SerializeToString())
        with self.assertRaisesRegex(ValueError, "disagrees"):
            events.read(wrong)


if __name__ == "__main__":
    unittest.main()
