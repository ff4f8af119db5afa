"""Column shorthands for the feed declarations: a column's type, and a common column's rule, written once.

``string("name")`` is ``Column("name", "string")``; keyword arguments go to :class:`Column` (``nullable``,
``allowed``, ``min``, ``max``, ``pii``, ``description``, ``source_name``, ``unit``). The named columns
(``town``, ``lat``, ``lon``, ``phone``, ``person``, ``updated_at``) carry the checks and descriptions every
feed shares.
"""

from __future__ import annotations

from .model import Column
from .references import EVENT_TYPE_CODES, TOWN_CODES


def string(name: str, **kw) -> Column:
    return Column(name, "string", **kw)


def integer(name: str, **kw) -> Column:
    return Column(name, "integer", **kw)


def number(name: str, **kw) -> Column:
    """A float: a measurement or an amount."""
    return Column(name, "float", **kw)


def timestamp(name: str, **kw) -> Column:
    return Column(name, "timestamp", **kw)


def date(name: str, **kw) -> Column:
    return Column(name, "date", **kw)


def boolean(name: str, **kw) -> Column:
    return Column(name, "boolean", **kw)


def key(name: str, **kw) -> Column:
    """A required string identifier (a primary key's column, or a reference to another feed's)."""
    return Column(name, "string", nullable=False, **kw)


def updated_at(**kw) -> Column:
    """When the source last changed the record: every feed has it, and is extracted by it."""
    return timestamp(
        "updated_at", nullable=False, description="when the source system last changed the record", **kw
    )


def town(name: str = "town_code", **kw) -> Column:
    return string(
        name, nullable=False, allowed=TOWN_CODES, description="town (Cangnan administrative code)", **kw
    )


def lat(name: str = "lat", **kw) -> Column:
    return number(name, min=26.8, max=28.8, unit="degree", description="WGS-84 latitude", **kw)


def lon(name: str = "lon", **kw) -> Column:
    return number(name, min=119.5, max=121.5, unit="degree", description="WGS-84 longitude", **kw)


def phone(name: str, **kw) -> Column:
    return string(name, pii=True, description="mobile phone number (personal data)", **kw)


def person(name: str, **kw) -> Column:
    return string(name, pii=True, description="a person's name (personal data)", **kw)


def alert_columns(channel: str) -> tuple[Column, ...]:
    """The columns of a 110, 119 or 120 call: the three call centres deliver the same record."""
    return (
        key("incident_id", description="the call centre's incident number"),
        string(
            "channel", nullable=False, allowed=(channel,), description="110 police, 119 fire, 120 ambulance"
        ),
        string(
            "event_type_code",
            nullable=False,
            allowed=EVENT_TYPE_CODES,
            description="GB/T 35561-2017 event type",
        ),
        integer("priority", nullable=False, min=1, max=4, description="1 most urgent"),
        town(),
        timestamp("received_at", nullable=False, description="when the call was answered"),
        lat(),
        lon(),
        phone("caller_phone"),
        string("description", description="call-taker's summary"),
        updated_at(),
    )
