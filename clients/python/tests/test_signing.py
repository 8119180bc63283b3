"""SigV4: botocore's signature, as the client applies it, against values
computed without botocore."""

import datetime
import unittest
from unittest import mock

from support import ACCESS_KEY, SECRET, check_signed, sigv4

from evidentsource_client import Client, RequestError, RetryPolicy, TransportError
from evidentsource_client.signing import Signer
from evidentsource_client import transport


def at(*when):
    """botocore reads the time through this function on each signature."""
    return mock.patch("botocore.auth.get_current_datetime",
                      return_value=datetime.datetime(*when))


class Signing(unittest.TestCase):
    def test_the_aws_test_suites_get_vanilla_vector(self):
        # aws-sig-v4-test-suite/get-vanilla: GET / on example.amazonaws.com,
        # service "service", us-east-1, 2015-08-30T12:36:00Z.
        signer = Signer("us-east-1", (ACCESS_KEY, SECRET), service="service")
        with at(2015, 8, 30, 12, 36, 0):
            headers = signer.sign("GET", "https://example.amazonaws.com/",
                                  {"Host": "example.amazonaws.com"}, b"")
        self.assertEqual(
            headers["Authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        self.assertEqual(headers["X-Amz-Date"], "20150830T123600Z")

    def test_a_clients_request_is_signed_for_execute_api(self):
        # What transport.send signs: these headers, this body.
        url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/databases/accounts/query"
        body = b'{"selector": {"stream_equals": "a"}, "from": 1, "limit": 100}'
        headers = {"Host": "abc123.execute-api.eu-west-1.amazonaws.com",
                   "Accept": "application/json", "Content-Type": "application/json"}
        signer = Signer("eu-west-1", (ACCESS_KEY, SECRET))
        with at(2024, 1, 15, 10, 30, 0):
            signed = signer.sign("POST", url, headers, body)
        self.assertEqual(signed["X-Amz-Date"], "20240115T103000Z")
        self.assertNotIn("X-Amz-Security-Token", signed)
        self.assertEqual(
            signed["Authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/eu-west-1/execute-api/"
            "aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="
            + sigv4("POST", "/prod/databases/accounts/query", "",
                    {"accept": "application/json", "content-type": "application/json",
                     "host": headers["Host"], "x-amz-date": "20240115T103000Z"},
                    body, SECRET, "20240115T103000Z", "eu-west-1", "execute-api"))
        check_signed(self, "POST", "/prod/databases/accounts/query",
                     {k.lower(): v for k, v in signed.items()}, body)

    def test_temporary_credentials_send_and_sign_their_token(self):
        signer = Signer("eu-west-1", (ACCESS_KEY, SECRET, "the-token"))
        signed = signer.sign("GET", "https://h.example/databases/a", {"Host": "h.example"}, b"")
        self.assertEqual(signed["X-Amz-Security-Token"], "the-token")
        self.assertIn("x-amz-security-token", signed["Authorization"])
        check_signed(self, "GET", "/databases/a", {k.lower(): v for k, v in signed.items()}, b"")

    def test_the_default_chain_is_read_and_a_missing_one_named(self):
        env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
               "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
               "AWS_EC2_METADATA_DISABLED": "true"}
        with mock.patch.dict("os.environ", env, clear=True):
            signed = Signer("eu-west-1").sign("GET", "https://h.example/", {"Host": "h.example"},
                                              b"")
            check_signed(self, "GET", "/", {k.lower(): v for k, v in signed.items()}, b"")
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        with mock.patch.dict("os.environ", env, clear=True):
            with self.assertRaises(RequestError):
                Client("https://h.example", region="eu-west-1")

    def test_a_local_client_signs_nothing(self):
        client = Client("http://127.0.0.1:1")
        self.assertIsNone(client._signer)
        client.retry = RetryPolicy(max_attempts=1)
        with mock.patch.object(transport.http.client.HTTPConnection, "request",
                               side_effect=ConnectionRefusedError) as request:
            with self.assertRaises(TransportError):
                client.get_database("a")
        self.assertNotIn("Authorization", request.call_args.kwargs["headers"])


if __name__ == "__main__":
    unittest.main()
