"""A table in a department's database, read by watermark with a server-side cursor in chunks.

The rows with ``start < <watermark_column> <= end``, ordered by the watermark then the primary key.
Departments' databases hold naive wall-clock timestamps of the feed's ``timezone``: the interval's
bounds are converted to that before binding (a ``timestamp with time zone`` column gets them aware).
Values come back as the database typed them (naive timestamps stay naive local wall-clock time).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow as pa
import sqlalchemy as sa

from ..catalog import Feed
from .base import Extract, SourceError
from .settings import SqlSettings


def extract_sql(
    feed: Feed, start: dt.datetime | None, end: dt.datetime | None, settings: SqlSettings
) -> Extract:
    """Every row of the feed's table changed in ``(start, end]`` (no bound where None).

    Snapshot feeds too: only the rows changed in the interval (the pipeline merges them by key).
    """
    if feed.connector_kind != "sql":
        raise ValueError(f"feed {feed.name} is a {feed.connector_kind} feed, not sql")
    connector = feed.connector
    table_name: str = connector.table  # type: ignore[union-attr]
    zone = ZoneInfo(feed.timezone)
    bounds = (
        None if start is None else _aware(start, "start").astimezone(zone),
        None if end is None else _aware(end, "end").astimezone(zone),
    )
    try:
        url = sa.make_url(settings.url)
    except sa.exc.ArgumentError as exc:
        raise SourceError(
            f"feed {feed.name}: {settings.url_variable} is not a SQLAlchemy URL ({exc})"
        ) from None
    where = f"{url.render_as_string(hide_password=True)} table {table_name}"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = _reflect(conn, feed, table_name, where, settings)
            statement = _select(feed, table, *bounds, where)
            types = [(c.name, _arrow_type(c.type)) for c in table.columns]
            chunks: list[pa.Table] = []
            result = conn.execution_options(
                stream_results=True,
                yield_per=connector.chunk_rows,  # type: ignore[union-attr]
            ).execute(statement)
            try:
                for rows in result.partitions():
                    chunks.append(_chunk_table(types, rows))
            except ValueError as exc:  # a stored value the driver cannot convert (e.g. a bad date text)
                raise SourceError(
                    f"feed {feed.name}: {where} holds a value that cannot be read ({exc}); "
                    "ask the department to correct it"
                ) from exc
    except sa.exc.SQLAlchemyError as exc:
        reason = "the connection was lost" if getattr(exc, "connection_invalidated", False) else "it failed"
        raise SourceError(
            f"feed {feed.name}: reading {where} failed ({reason}: {type(exc).__name__}: {exc}); "
            "nothing of the batch was kept, run the extraction again"
        ) from exc
    finally:
        engine.dispose()
    if chunks:
        table_out = _concat(chunks)
    else:  # no rows: the columns the database declares (text where its type has no Arrow twin)
        table_out = pa.table({name: pa.array([], kind or pa.string()) for name, kind in types})
    return Extract(
        feed=feed.name,
        table=table_out,
        source=where,
        interval_start=start,  # type: ignore[arg-type]
        interval_end=end,  # type: ignore[arg-type]
    )


def _reflect(conn: sa.Connection, feed: Feed, name: str, where: str, settings: SqlSettings) -> sa.Table:
    try:
        return sa.Table(name, sa.MetaData(), autoload_with=conn)
    except sa.exc.NoSuchTableError:
        raise SourceError(
            f"feed {feed.name}: no table {name!r} at {where}; check {settings.url_variable} "
            "and the feed's table in the catalog"
        ) from None


def _select(
    feed: Feed, table: sa.Table, start: dt.datetime | None, end: dt.datetime | None, where: str
) -> sa.Select:
    """``start``/``end``: aware, in the source's zone."""
    watermark_name: str = feed.connector.watermark_column  # type: ignore[union-attr]
    if watermark_name not in table.c:
        raise SourceError(
            f"feed {feed.name}: {where} has no watermark column {watermark_name!r} "
            f"(it has {', '.join(table.c.keys())}); the department changed its schema or the catalog is wrong"
        )
    watermark = table.c[watermark_name]
    aware = isinstance(watermark.type, sa.DateTime) and bool(watermark.type.timezone)
    statement = sa.select(table)
    if start is not None:
        statement = statement.where(watermark > (start if aware else start.replace(tzinfo=None)))
    if end is not None:
        statement = statement.where(watermark <= (end if aware else end.replace(tzinfo=None)))
    keys = [table.c[k] for k in feed.primary_key if k in table.c and k != watermark_name]
    return statement.order_by(watermark, *keys)


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"interval {name} {value!r} has no time zone; pass an aware datetime")
    return value


def _arrow_type(sql_type: sa.types.TypeEngine) -> pa.DataType | None:
    """The Arrow type of a database column; None to let Arrow infer it from the values."""
    if isinstance(sql_type, sa.Boolean):
        return pa.bool_()
    if isinstance(sql_type, sa.Integer):
        return pa.int64()
    if isinstance(sql_type, sa.Float):
        return pa.float64()
    if isinstance(sql_type, sa.DateTime):
        return pa.timestamp("us", tz="UTC" if sql_type.timezone else None)
    if isinstance(sql_type, sa.Date):
        return pa.date32()
    if isinstance(sql_type, sa.Time):
        return pa.time64("us")
    if isinstance(sql_type, sa.String):
        return pa.string()
    if isinstance(sql_type, sa.LargeBinary):
        return pa.binary()
    return None


def _chunk_table(types: list[tuple[str, pa.DataType | None]], rows: list[sa.Row]) -> pa.Table:
    """One fetched chunk, column by column (rows transposed; no pandas in between)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in types]
    return pa.table(
        {name: _array(list(values), kind) for (name, kind), values in zip(types, columns, strict=True)}
    )


def _array(values: list, arrow_type: pa.DataType | None) -> pa.Array:
    """Values with the column's declared type; inferred, or text, when the database holds other kinds
    (SQLite lets a text sit in an integer column)."""
    for candidate in (arrow_type, None) if arrow_type is not None else (None,):
        try:
            return pa.array(values, candidate)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            continue
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def _concat(chunks: list[pa.Table]) -> pa.Table:
    """The chunks as one table (chunks kept); a column two chunks typed differently becomes text."""
    try:
        return pa.concat_tables(chunks, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    names = chunks[0].column_names
    kinds = {n: {c.schema.field(n).type for c in chunks} - {pa.null()} for n in names}
    clashing = [n for n in names if len(kinds[n]) > 1]
    recast = []
    for chunk in chunks:
        for name in clashing:
            i = chunk.column_names.index(name)
            values = chunk.column(i).to_pylist()
            chunk = chunk.set_column(
                i, name, pa.array([None if v is None else str(v) for v in values], pa.string())
            )
        recast.append(chunk)
    return pa.concat_tables(recast, promote_options="permissive")
