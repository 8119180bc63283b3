"""The client's pure decisions, table by table."""

import unittest

from evidentsource_client import (ApiError, ErrorCode, QueryPage, QueryResult, RetryPolicy,
                                  all_of, any_of, at_least, at_most, event, event_type_equals,
                                  revision, stream_equals, stream_starts_with, subject_equals,
                                  within)
from evidentsource_client.errors import from_response
from evidentsource_client.model import next_from_link
from evidentsource_client.retry import is_retryable


class Errors(unittest.TestCase):
    def test_problems_are_typed_by_their_code(self):
        for status, body, code, field in [
            (400, b'{"status":400,"code":"INVALID_ARGUMENT","field":"events[0].source",'
                  b'"detail":"x"}', ErrorCode.INVALID_ARGUMENT, "events[0].source"),
            (404, b'{"code":"NOT_FOUND","detail":"no"}', ErrorCode.NOT_FOUND, None),
            (409, b'{"code":"ALREADY_EXISTS"}', ErrorCode.ALREADY_EXISTS, None),
            (409, b'{"code":"FAILED_PRECONDITION","field":"conditions[0]"}',
             ErrorCode.FAILED_PRECONDITION, "conditions[0]"),
            (503, b'{"code":"INTERNAL"}', ErrorCode.INTERNAL, None),
            # Not a problem body, or a code the contract does not have: the
            # status decides.
            (502, b"Bad Gateway", ErrorCode.INTERNAL, None),
            (404, b"<html>", ErrorCode.NOT_FOUND, None),
            (413, b"", ErrorCode.INVALID_ARGUMENT, None),
            (400, b'{"code":"SOMETHING_NEW"}', ErrorCode.INVALID_ARGUMENT, None),
            (500, b'["code"]', ErrorCode.INTERNAL, None),
        ]:
            with self.subTest(body=body):
                error = from_response(status, body)
                self.assertIsInstance(error, ApiError)
                self.assertEqual((error.status, error.code, error.field), (status, code, field))
        self.assertTrue(from_response(409, b'{"code":"FAILED_PRECONDITION"}').is_conflict)
        self.assertFalse(from_response(409, b'{"code":"ALREADY_EXISTS"}').is_conflict)
        self.assertEqual(from_response(500, b'{"code":"INTERNAL","request_id":"r-1"}')
                         .request_id, "r-1")
        self.assertEqual(len(from_response(502, b"x" * 10_000).detail), 256)


class Retries(unittest.TestCase):
    def test_only_503_and_transport_faults_are_retried(self):
        for status, retry in [(503, True), (None, True), (500, False), (502, False),
                              (400, False), (404, False), (409, False), (413, False),
                              (429, False), (200, False)]:
            with self.subTest(status=status):
                self.assertEqual(is_retryable(status), retry)

    def test_backoff_doubles_up_to_its_bounds(self):
        policy = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=0.35, max_elapsed=2.0)
        for attempt, elapsed, retry_after, jitter, expected in [
            (1, 0, None, 1.0, 0.1),
            (2, 0, None, 1.0, 0.2),
            (3, 0, None, 1.0, 0.35),  # capped at max_delay
            (4, 0, None, 1.0, 0.35),
            (5, 0, None, 1.0, None),  # max_attempts reached
            (2, 0, None, 0.5, 0.1),
            (2, 0, None, 0.0, 0.0),
            (1, 0, 0.3, 0.0, 0.3),  # retry-after a floor
            (1, 0, 60, 0.0, 0.35),  # ... capped at max_delay
            (2, 1.9, None, 0.5, 0.1),
            (2, 1.95, None, 1.0, None),  # past max_elapsed
        ]:
            with self.subTest(attempt=attempt, elapsed=elapsed, retry_after=retry_after,
                              jitter=jitter):
                got = policy.delay(attempt, elapsed, retry_after, jitter)
                if expected is None:
                    self.assertIsNone(got)
                else:
                    self.assertAlmostEqual(got, expected)


class Model(unittest.TestCase):
    def test_the_next_page_is_read_off_the_link_header(self):
        for link, expected in [
            ('</databases/a/events?from=1001>; rel="next"', 1001),
            ('</databases/a/events?from=7&to=9>; rel="next"', 7),
            ('</databases/a/events?to=9&from=8>; rel="next"', 8),
            ('</databases/a/events>; rel="next"', None),
            ('</databases/a/events?from=3>; rel="prev"', None),
            ("garbage", None),
            (None, None),
        ]:
            with self.subTest(link=link):
                self.assertEqual(next_from_link(link), expected)

    def test_pages_add_up_to_the_last_pages_revision(self):
        def read(n):
            return {**event("https://x/s", "t", f"e-{n}"), "revision": n}

        result = QueryResult()
        self.assertEqual(result.extend(QueryPage(as_of=10, events=[read(2), read(5)],
                                                 next_from=6)), 6)
        # Something matching was appended between the pages (revision 12).
        self.assertIsNone(result.extend(QueryPage(as_of=12, events=[read(12)])))
        self.assertEqual(result.as_of, 12)
        self.assertEqual([revision(e) for e in result.events], [2, 5, 12])

    def test_selectors_and_conditions_take_the_documented_json(self):
        for built, expected in [
            (at_most(subject_equals("a-42"), 0),
             {"selector": {"subject_equals": "a-42"}, "max": 0}),
            (at_least(stream_starts_with("acc"), 3),
             {"selector": {"stream_starts_with": "acc"}, "min": 3}),
            (within(all_of(event_type_equals("t"), any_of(stream_equals("s"))), 1, 9),
             {"selector": {"and": {"selectors": [
                 {"event_type_equals": "t"}, {"or": {"selectors": [{"stream_equals": "s"}]}}]}},
              "range": {"min": 1, "max": 9}}),
        ]:
            self.assertEqual(built, expected)
        self.assertEqual(event("https://x/a", "opened", "e-2"),
                         {"specversion": "1.0", "id": "e-2", "source": "https://x/a",
                          "type": "opened"})
        self.assertEqual(event("https://x/a", "t", "e", subject="s", data={"k": 1}),
                         {"specversion": "1.0", "id": "e", "source": "https://x/a", "type": "t",
                          "subject": "s", "datacontenttype": "application/json",
                          "data": {"k": 1}})
        self.assertIsNone(revision(event("https://x/a", "t", "e")))


if __name__ == "__main__":
    unittest.main()
