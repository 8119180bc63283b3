"""One HTTP exchange with the standard library's http.client: a fresh
connection per attempt, so a retry never reuses a socket the server may have
half-closed, and threads sharing a Client share no connection state."""

import http.client
import socket
import urllib.parse

from .errors import RequestError

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Answer:
    """What came back, as far as the client reads it."""

    def __init__(self, status, headers, body):
        self.status = status
        #: Header names lower-cased; a repeated header keeps its last value.
        self.headers = headers
        self.body = body

    @property
    def retry_after(self):
        """Retry-After in seconds (the delta form the API sends), or None."""
        value = self.headers.get("retry-after", "").strip()
        return float(value) if value.isdigit() else None


class NoAnswer(Exception):
    """The attempt got no answer (connect, I/O or timeout): worth another."""


def split(url):
    """(scheme, host header, connection host, port, path+query) of `url`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise RequestError(f"not an http(s) URL: {url}")
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    host_header = host if port == _DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, host_header, parts.hostname, port, target


def send(method, url, body, signer, timeout):
    """Sends one attempt; returns its Answer or raises NoAnswer."""
    scheme, host_header, host, port, target = split(url)
    headers = {"Host": host_header, "Accept": "application/json"}
    if body:
        headers["Content-Type"] = "application/json"
    if signer is not None:
        headers = signer.sign(method, url, headers, body)
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    connection = cls(host, port, timeout=timeout)
    try:
        connection.request(method, target, body=body or None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, answer_headers, data)
    except (OSError, socket.timeout, http.client.HTTPException) as e:
        # Refused, reset, closed before an answer, or no answer in time.
        raise NoAnswer(f"{type(e).__name__}: {e}") from e
    finally:
        connection.close()
