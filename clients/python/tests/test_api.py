"""The client against the real API (API_URL: tools/local-runner/tests/
python_client.rs serves it over moto): every route, the typed errors,
idempotent retries, paging, and the DCB loop under contention."""

import collections
import os
import threading
import unittest
import uuid

from evidentsource_client import (ApiError, Client, ErrorCode, RetryPolicy, at_most, event,
                                  revision, stream_equals, subject_equals)

API_URL = os.environ.get("API_URL")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def opened(account, id):
    return event("https://example.com/bank/accounts", "account-opened", id,
                 subject=account, data={"owner": "Ada"})


@unittest.skipUnless(API_URL, "API_URL is not set (python_client.rs sets it)")
class Api(unittest.TestCase):
    def setUp(self):
        self.client = Client(API_URL)

    def api_error(self, call, *args, **kwargs):
        with self.assertRaises(ApiError) as raised:
            call(*args, **kwargs)
        e = raised.exception
        return e.status, e.code, e.field

    def test_every_route_answers_typed(self):
        client, db = self.client, unique("routes")
        created = client.create_database(db)
        self.assertEqual((created["name"], created["revision"]), (db, 0))
        self.assertEqual(self.api_error(client.create_database, db),
                         (409, ErrorCode.ALREADY_EXISTS, None))

        account = subject_equals("account-42")
        summary = client.transact(db, [opened("account-42", "e-1"), opened("account-7", "e-2")],
                                  [at_most(account, 0)])
        self.assertEqual((summary["basis"], summary["revision"], summary["event_count"]),
                         (0, 2, 2))
        self.assertEqual(client.get_database(db)["revision"], 2)

        # The condition no longer holds: a conflict naming it.
        with self.assertRaises(ApiError) as raised:
            client.transact(db, [opened("account-42", "e-3")], [at_most(account, 0)])
        self.assertTrue(raised.exception.is_conflict)
        self.assertEqual((raised.exception.status, raised.exception.field),
                         (409, "conditions[0]"))

        page = client.events(db, 1)
        self.assertEqual([(e["id"], revision(e)) for e in page.events], [("e-1", 1), ("e-2", 2)])
        self.assertIsNone(page.next_from)
        self.assertEqual(page.events[0]["data"], {"owner": "Ada"})
        self.assertEqual(len(client.all_events(db, 2, 2)), 1)

        query = client.query(db, account)
        self.assertEqual((query.as_of, query.next_from, len(query.events)), (2, None, 1))
        self.assertEqual(query.events[0]["subject"], "account-42")
        everything = client.query_all(db, account)
        self.assertEqual((everything.as_of, len(everything.events)), (2, 1))

        self.assertEqual(client.delete_database(db)["revision"], 2)
        self.assertEqual(self.api_error(client.get_database, db)[:2],
                         (404, ErrorCode.NOT_FOUND))

    def test_errors_are_typed_by_the_contracts_codes(self):
        client, missing = self.client, unique("missing")
        self.assertEqual(self.api_error(client.get_database, missing),
                         (404, ErrorCode.NOT_FOUND, None))
        self.assertEqual(self.api_error(client.transact, missing, [opened("a", "e-1")])[:2],
                         (404, ErrorCode.NOT_FOUND))
        db = unique("errors")
        client.create_database(db)
        no_stream = event("https://example.com/", "t", "e-1")
        self.assertEqual(self.api_error(client.transact, db, [no_stream]),
                         (400, ErrorCode.INVALID_ARGUMENT, "events[0].source"))
        self.assertEqual(self.api_error(client.query, db, stream_equals("a"), 0),
                         (400, ErrorCode.INVALID_ARGUMENT, "from"))
        self.assertEqual(self.api_error(client.create_database, "1-bad")[:2],
                         (400, ErrorCode.INVALID_ARGUMENT))

    def test_a_transaction_sent_twice_with_its_id_commits_once(self):
        client, db = self.client, unique("twice")
        client.create_database(db)
        events = [opened("account-1", "e-1")]
        first = client.transact(db, events, transaction_id="open-1")
        # What a retry after a lost answer sends: the same id and body.
        second = client.transact(db, events, transaction_id="open-1")
        self.assertEqual(first, second)
        self.assertEqual(client.get_database(db)["revision"], 1)
        self.assertEqual(len(client.all_events(db)), 1)
        # Without an id each call is a transaction of its own.
        client.transact(db, events)
        self.assertEqual(client.get_database(db)["revision"], 2)

    def test_reads_past_one_page_follow_the_pages(self):
        client, db = self.client, unique("pages")
        client.create_database(db)
        # A page holds at most 1000 events: 1005, written in batches, make two.
        for start in range(0, 1005, 250):
            client.transact(db, [opened("account-1", f"e-{i}")
                                 for i in range(start, min(start + 250, 1005))])
        first = client.events(db)
        self.assertEqual((len(first.events), first.next_from), (1000, 1001))
        self.assertEqual([revision(e) for e in client.all_events(db)], list(range(1, 1006)))

        account = subject_equals("account-1")
        page = client.query(db, account, limit=1000)
        self.assertIsNotNone(page.next_from, "one page held everything")
        everything = client.query_all(db, account)
        self.assertEqual(everything.as_of, 1005)
        self.assertEqual([revision(e) for e in everything.events], list(range(1, 1006)))

    def test_a_decision_to_append_nothing_writes_nothing(self):
        client, db = self.client, unique("nothing")
        client.create_database(db)
        client.transact(db, [opened("account-1", "e-1")])
        seen = []
        decided = client.decide_and_append(db, subject_equals("account-1"),
                                           lambda events: seen.append(len(events)))
        self.assertEqual((decided.appended, decided.as_of, seen), (None, 1, [1]))
        self.assertEqual(client.get_database(db)["revision"], 1)

    def test_the_dcb_loop_loses_and_doubles_nothing_under_contention(self):
        clients, capacity = 8, 12
        db = unique("seats")
        self.client.create_database(db)
        seats = subject_equals("flight-42")
        decisions, outcomes, failures = [0], collections.Counter(), []
        lock = threading.Lock()

        def reserve(c):
            # A client each, as separate processes would have.
            client = Client(API_URL, retry=RetryPolicy(max_elapsed=60.0))

            def decide(events):
                with lock:
                    decisions[0] += 1
                taken = [e["data"]["seat"] for e in events]
                if len(taken) >= capacity:
                    return None  # sold out
                seat = max(taken, default=0) + 1
                return [event("https://example.com/seats", "seat-reserved", f"seat-{seat}",
                              subject="flight-42", data={"seat": seat, "client": c})]

            try:
                while True:
                    decided = client.decide_and_append(db, seats, decide, max_attempts=200)
                    with lock:
                        outcomes["appended" if decided.appended else "refused"] += 1
                    if decided.appended is None:
                        return
            except Exception as e:  # reported below, where the test can fail
                failures.append(repr(e))

        threads = [threading.Thread(target=reserve, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        print(f"\n{decisions[0]} decisions for {capacity} seats", end=" ")

        events = self.client.all_events(db)
        seats_taken = collections.Counter(e["data"]["seat"] for e in events)
        self.assertEqual(seats_taken, {s: 1 for s in range(1, capacity + 1)},
                         "lost or doubled seats")
        self.assertEqual(outcomes, {"appended": capacity, "refused": clients})


if __name__ == "__main__":
    unittest.main()
