"""The API's JSON as plain dicts and lists (docs/api.md), with helpers to
build the common shapes and small records for what comes back in pages.

Events are CloudEvents in their JSON format; events read back carry their
database `revision` as an extension attribute (see `revision`).
"""

import dataclasses
import urllib.parse


def event(source, type, id, subject=None, data=None, **extensions):
    """A CloudEvents 1.0 event. `data` is sent as JSON; the event's stream
    is the last path segment of `source`."""
    built = {"specversion": "1.0", "id": id, "source": source, "type": type}
    if subject is not None:
        built["subject"] = subject
    if data is not None:
        built["datacontenttype"] = "application/json"
        built["data"] = data
    built.update(extensions)
    return built


def revision(event):
    """The database revision of an event read back; None on one to send."""
    value = event.get("revision")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# Selectors: which events a query reads or a condition looks at. An event
# without a subject matches neither subject selector.
def stream_equals(value):
    return {"stream_equals": value}


def stream_starts_with(value):
    return {"stream_starts_with": value}


def subject_equals(value):
    return {"subject_equals": value}


def subject_starts_with(value):
    return {"subject_starts_with": value}


def event_type_equals(value):
    return {"event_type_equals": value}


def event_type_starts_with(value):
    return {"event_type_starts_with": value}


def all_of(*selectors):
    return {"and": {"selectors": list(selectors)}}


def any_of(*selectors):
    return {"or": {"selectors": list(selectors)}}


# Append conditions on h, the highest revision of the events matching the
# selector (0 if none).
def at_most(selector, revision):
    """h <= revision: nothing matching was appended after it (0: nothing
    may match). With a read's as_of: optimistic concurrency."""
    return {"selector": selector, "max": revision}


def at_least(selector, revision):
    """h >= revision."""
    return {"selector": selector, "min": revision}


def within(selector, min, max):
    """min <= h <= max."""
    return {"selector": selector, "range": {"min": min, "max": max}}


@dataclasses.dataclass
class QueryPage:
    """One page of POST /databases/{name}/query."""

    #: The database revision the page is consistent with.
    as_of: int
    events: list
    #: Where the next page starts; None once every match up to as_of was read.
    next_from: object = None


@dataclasses.dataclass
class QueryResult:
    """Every event matching a selector up to as_of: all pages of a query."""

    as_of: int = 0
    events: list = dataclasses.field(default_factory=list)

    def extend(self, page):
        """Adds the next page; returns where the page after it starts.

        A later page is read as of a later revision, and with it every match
        up to that one has been read: as_of moves up to it.
        """
        self.as_of = max(self.as_of, page.as_of)
        self.events.extend(page.events)
        return page.next_from


@dataclasses.dataclass
class EventsPage:
    """One page of GET /databases/{name}/events."""

    events: list
    #: The `from` of the next page (the response's Link rel="next").
    next_from: object = None


@dataclasses.dataclass
class Decided:
    """What one decide_and_append came to: `appended` is the committed
    batch's summary, or None when the decision was to append nothing (having
    seen the events as of revision `as_of`)."""

    appended: object
    as_of: int


def next_from_link(link):
    """The `from` of a `Link: </databases/x/events?from=N&to=M>; rel="next"`,
    or None."""
    if not link or 'rel="next"' not in link:
        return None
    target = link.split(";", 1)[0].strip()
    if not (target.startswith("<") and target.endswith(">")):
        return None
    query = urllib.parse.urlsplit(target[1:-1]).query
    values = urllib.parse.parse_qs(query).get("from")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None
