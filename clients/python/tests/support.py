"""What the tests share: a scripted local HTTP server, and SigV4 computed
independently of botocore (from the algorithm's definition) to check the
client's signatures against."""

import hashlib
import hmac
import http.server
import threading
import time
import urllib.parse

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ACCESS_KEY = "AKIDEXAMPLE"


class Scripted:
    """A local HTTP server answering its requests from a script, one step a
    request, the last step repeated: (status, headers, body), "hangup"
    (close without answering) or ("hang", seconds) (answer nothing that
    long, then hang up). Records every request as (method, path, headers,
    body)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                owner.requests.append((self.command, self.path,
                                       {k.lower(): v for k, v in self.headers.items()}, body))
                step = owner.script[min(len(owner.requests), len(owner.script)) - 1]
                if step == "hangup":
                    self.close_connection = True
                    return
                if isinstance(step, tuple) and step[0] == "hang":
                    time.sleep(step[1])
                    self.close_connection = True
                    return
                status, headers, payload = step
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = handle_one

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a "hang" step must not hold up the test
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4(method, path, query, headers, body, secret, amz_date, region, service):
    """The Signature of a request: the canonical request over `headers`
    (the signed ones, names lower-case), the string to sign, the derived
    key. Paths here hold no characters that need encoding."""
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}="
                               f"{urllib.parse.quote(v, safe='-_.~')}" for k, v in pairs)
    names = sorted(headers)
    canonical = "\n".join([
        method, path or "/", canonical_query,
        "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
        ";".join(names), hashlib.sha256(body).hexdigest()])
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def check_signed(test, method, path, headers, body, region="eu-west-1",
                 service="execute-api", secret=SECRET):
    """Asserts that a request as received carries a valid SigV4 signature
    for `service` in `region`."""
    authorization = headers.get("authorization")
    test.assertIsNotNone(authorization, f"unsigned: {headers}")
    parts = dict(p.strip().split("=", 1) for p in
                 authorization.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    amz_date = headers["x-amz-date"]
    test.assertEqual(parts["Credential"],
                     f"{ACCESS_KEY}/{amz_date[:8]}/{region}/{service}/aws4_request")
    signed = parts["SignedHeaders"].split(";")
    test.assertIn("host", signed)
    test.assertIn("x-amz-date", signed)
    split = urllib.parse.urlsplit(path)
    expected = sigv4(method, split.path, split.query, {n: headers[n] for n in signed},
                     body, secret, amz_date, region, service)
    test.assertEqual(parts["Signature"], expected)
