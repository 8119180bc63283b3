"""The HTTP API (docs/api.md) as one class: typed answers, bounded retries,
optional SigV4 signing."""

import json
import random
import time
import urllib.parse
import uuid

from . import dcb, transport
from .errors import DecodeError, RequestError, TransportError, from_response
from .model import EventsPage, QueryPage, QueryResult, next_from_link
from .retry import RetryPolicy, is_retryable

#: The most events a query page may hold (and what query_all asks for).
MAX_QUERY_LIMIT = 1000


class Client:
    """A handle on one API endpoint; safe to share between threads.

    Client(endpoint) sends unsigned requests (the local stack, or an API
    without AWS_IAM authorization); Client(endpoint, region=...) signs every
    attempt with SigV4 for execute-api, with `credentials` or, when they are
    None, the standard AWS credential chain.
    """

    def __init__(self, endpoint, region=None, credentials=None, retry=None,
                 attempt_timeout=30.0):
        transport.split(endpoint)  # fail now on a URL that cannot work
        #: The endpoint without a trailing / (it may hold a stage path).
        self.base = endpoint.rstrip("/")
        self.retry = retry or RetryPolicy()
        #: How long one attempt may wait for its answer: the API answers
        #: within its function's timeout.
        self.attempt_timeout = attempt_timeout
        self._signer = None
        if region is not None:
            from .signing import Signer

            self._signer = Signer(region, credentials)
        elif credentials is not None:
            raise RequestError("credentials given without a region to sign for")

    def create_database(self, name):
        """POST /databases. Retried like every call: a retry after a lost
        answer to a create that succeeded gets 409 ALREADY_EXISTS."""
        return self._json("POST", "/databases", {"name": name}, 201)

    def get_database(self, name):
        """GET /databases/{name}: the latest state."""
        return self._json("GET", _db(name), None, 200)

    def delete_database(self, name):
        """DELETE /databases/{name}: the database's final state."""
        return self._json("DELETE", _db(name), None, 200)

    def transact(self, name, events, conditions=(), transaction_id=None):
        """POST /databases/{name}/transactions: appends `events` if every
        condition holds; returns the batch summary. Without a transaction_id
        one is generated; this call's retries reuse it, so the batch commits
        at most once."""
        body = {"transaction_id": transaction_id or str(uuid.uuid4()),
                "events": list(events)}
        if conditions:
            body["conditions"] = list(conditions)
        return self._json("POST", _db(name) + "/transactions", body, 200)

    def events(self, name, from_=None, to=None):
        """GET /databases/{name}/events: one page of the events with
        revisions from_ (default 1) to `to` (default the latest)."""
        query = {k: v for k, v in (("from", from_), ("to", to)) if v is not None}
        path = _db(name) + "/events"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        answer = self._call("GET", path, None, 200)
        return EventsPage(events=_decode(answer),
                          next_from=next_from_link(answer.headers.get("link")))

    def all_events(self, name, from_=None, to=None):
        """Every event with revisions from_ to `to`: follows the pages."""
        page = self.events(name, from_, to)
        events = list(page.events)
        while page.next_from is not None:
            page = self.events(name, page.next_from, to)
            events.extend(page.events)
        return events

    def query(self, name, selector, from_=None, limit=None):
        """POST /databases/{name}/query: one page of the events matching
        `selector` from revision from_ (default 1), at most `limit` (1-1000,
        default 100)."""
        body = {"selector": selector, "from": 1 if from_ is None else from_,
                "limit": 100 if limit is None else limit}
        found = self._json("POST", _db(name) + "/query", body, 200)
        try:
            return QueryPage(as_of=found["as_of"], events=found.get("events", []),
                             next_from=found.get("next_from"))
        except (KeyError, TypeError) as e:
            raise DecodeError(f"query page: {e!r}") from e

    def query_all(self, name, selector):
        """Every event matching `selector`: the pages of query() followed
        until next_from is None. The result's as_of is the last (highest)
        page's: every match up to it has been read, so at_most(selector,
        as_of) is exactly "nothing new since this read"."""
        result = QueryResult()
        next_from = None
        while True:
            page = self.query(name, selector, next_from, MAX_QUERY_LIMIT)
            next_from = result.extend(page)
            if next_from is None:
                return result

    def decide_and_append(self, name, selector, decide,
                          max_attempts=dcb.DEFAULT_DCB_ATTEMPTS):
        """The DCB loop; see evidentsource_client.dcb.decide_and_append."""
        return dcb.decide_and_append(self, name, selector, decide, max_attempts)

    def _json(self, method, path, body, ok):
        data = None if body is None else json.dumps(body).encode()
        return _decode(self._call(method, path, data, ok))

    def _call(self, method, path, body, ok):
        """One request under the retry policy: 503s and transport faults are
        sent again (the same bytes, so the same transaction id, signed
        afresh) after a backoff; any other answer but `ok` is the typed
        error."""
        url = self.base + path
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = transport.send(method, url, body, self._signer,
                                        self.attempt_timeout)
            except transport.NoAnswer as e:
                status, error, retry_after = None, TransportError(str(e)), None
            else:
                if answer.status == ok:
                    return answer
                status = answer.status
                error = from_response(answer.status, answer.body)
                retry_after = answer.retry_after
            if not is_retryable(status):
                raise error
            wait = self.retry.delay(attempt, time.monotonic() - started, retry_after,
                                    random.random())
            if wait is None:
                raise error
            time.sleep(wait)


def _db(name):
    # A name is letters, digits and dashes; quoting keeps anything else
    # from changing the route.
    return "/databases/" + urllib.parse.quote(name, safe="")


def _decode(answer):
    try:
        return json.loads(answer.body)
    except ValueError as e:
        raise DecodeError(f"{answer.status} answer is not JSON: {e}") from e
