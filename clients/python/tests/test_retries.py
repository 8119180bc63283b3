"""Retries against a scripted local server: what is sent again, with what
bytes and signature, what is not, and when the client gives up."""

import json
import time
import unittest

from support import ACCESS_KEY, SECRET, Scripted, check_signed

from evidentsource_client import (ApiError, Client, ErrorCode, RetryPolicy, TransportError,
                                  event)

SUMMARY = {"id": "b-1", "database": "accounts", "basis": 0, "revision": 1, "event_count": 1}
OK = (200, {"Content-Type": "application/json"}, json.dumps(SUMMARY).encode())
UNAVAILABLE = (503, {"Content-Type": "application/problem+json"},
               b'{"status":503,"code":"INTERNAL","detail":"busy"}')
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_elapsed=5.0)
EVENTS = [event("https://example.com/accounts", "opened", "e-1", subject="a-1")]


def problem(status, code):
    return (status, {"Content-Type": "application/problem+json"},
            json.dumps({"status": status, "code": code, "detail": "no"}).encode())


class Retries(unittest.TestCase):
    def serve(self, *script):
        server = Scripted(script)
        self.addCleanup(server.close)
        return server

    def assert_same_transaction(self, server, attempts):
        bodies = [body for _, _, _, body in server.requests]
        self.assertEqual(len(bodies), attempts)
        self.assertEqual(len(set(bodies)), 1, "a retry sent other bytes")
        self.assertTrue(json.loads(bodies[0])["transaction_id"])

    def test_503s_are_sent_again_with_the_same_transaction(self):
        server = self.serve(UNAVAILABLE, UNAVAILABLE, OK)
        summary = Client(server.url, retry=FAST).transact("accounts", EVENTS)
        self.assertEqual(summary, SUMMARY)
        self.assert_same_transaction(server, 3)

    def test_a_given_transaction_id_is_the_one_sent(self):
        server = self.serve(UNAVAILABLE, OK)
        Client(server.url, retry=FAST).transact("accounts", EVENTS, transaction_id="open-1")
        self.assert_same_transaction(server, 2)
        self.assertEqual(json.loads(server.requests[0][3])["transaction_id"], "open-1")

    def test_a_hang_up_or_a_timeout_is_sent_again(self):
        for fault in ["hangup", ("hang", 0.5)]:
            with self.subTest(fault=fault):
                server = self.serve(fault, OK)
                client = Client(server.url, retry=FAST, attempt_timeout=0.2)
                self.assertEqual(client.transact("accounts", EVENTS), SUMMARY)
                self.assert_same_transaction(server, 2)

    def test_answers_about_the_request_are_not_retried(self):
        for status, code in [(400, "INVALID_ARGUMENT"), (404, "NOT_FOUND"),
                             (409, "FAILED_PRECONDITION"), (409, "ALREADY_EXISTS"),
                             (429, "INVALID_ARGUMENT"), (500, "INTERNAL"), (502, None)]:
            with self.subTest(status=status, code=code):
                answer = problem(status, code) if code else (status, {}, b"Bad Gateway")
                server = self.serve(answer, OK)
                with self.assertRaises(ApiError) as raised:
                    Client(server.url, retry=FAST).transact("accounts", EVENTS)
                self.assertEqual(len(server.requests), 1)
                self.assertEqual(raised.exception.status, status)
                self.assertEqual(raised.exception.code.value, code or "INTERNAL")

    def test_retries_are_bounded_by_attempts(self):
        server = self.serve(UNAVAILABLE)
        with self.assertRaises(ApiError) as raised:
            Client(server.url, retry=FAST).get_database("accounts")
        self.assertEqual((raised.exception.status, raised.exception.code),
                         (503, ErrorCode.INTERNAL))
        self.assertEqual(len(server.requests), FAST.max_attempts)
        server = self.serve("hangup")
        with self.assertRaises(TransportError):
            Client(server.url, retry=FAST).get_database("accounts")
        self.assertEqual(len(server.requests), FAST.max_attempts)

    def test_retry_after_is_a_floor_and_the_elapsed_bound_holds(self):
        later = (503, {"Retry-After": "1"}, b"")
        server = self.serve(later, OK)
        started = time.monotonic()
        Client(server.url, retry=RetryPolicy(
            max_attempts=3, base_delay=0.001, max_delay=2.0, max_elapsed=5.0)
        ).get_database("accounts")
        self.assertGreaterEqual(time.monotonic() - started, 1.0)
        self.assertEqual(len(server.requests), 2)
        # A wait that would pass max_elapsed is not begun.
        server = self.serve(later, OK)
        started = time.monotonic()
        with self.assertRaises(ApiError):
            Client(server.url, retry=RetryPolicy(max_attempts=5, base_delay=0.001,
                                                 max_delay=2.0, max_elapsed=0.5)
                   ).get_database("accounts")
        self.assertEqual(len(server.requests), 1)
        self.assertLess(time.monotonic() - started, 0.5)

    def test_every_attempt_of_a_signed_call_is_signed(self):
        server = self.serve(UNAVAILABLE, "hangup", OK)
        client = Client(server.url + "/prod", region="eu-west-1",
                        credentials=(ACCESS_KEY, SECRET), retry=FAST)
        client.transact("accounts", EVENTS)
        self.assert_same_transaction(server, 3)
        for method, path, headers, body in server.requests:
            self.assertEqual((method, path), ("POST", "/prod/databases/accounts/transactions"))
            check_signed(self, method, path, headers, body)

    def test_an_unsigned_client_sends_no_signature(self):
        server = self.serve(OK)
        Client(server.url).transact("accounts", EVENTS)
        self.assertNotIn("authorization", server.requests[0][2])


if __name__ == "__main__":
    unittest.main()
