"""Bulk inserts straight to the driver's executemany.

``session.execute(insert(table), rows)`` is already one executemany, but SQLAlchemy still
builds every row's parameters in Python (``construct_params`` and each column type's bind
processor): at 100,000 invites, events and mirror rows that is most of an apply. Here the
statement is compiled once, each column's bind processor is looked up once (and applied once
per distinct value where values repeat, as timestamps do), and the rows go to the DBAPI
cursor's ``executemany`` in the dialect's parameter style. Same SQL, same types, same
transaction (the session's connection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

#: rows per executemany: the same statement, in slices, so parameter copies stay small
_CHUNK = 20_000


def _processor(table: Table, key: str, dialect: Any, sample: Any) -> Callable[[Any], Any] | None:
    process: Callable[[Any], Any] | None = table.c[key].type._cached_bind_processor(dialect)
    if process is None or not isinstance(sample, datetime):
        return process
    memo: dict[Any, Any] = {}  # timestamps repeat (one "now" per apply): process each once

    def cached(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            memo[value] = result = process(value)
            return result

    return cached


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT every row (all with the same keys) in one executemany."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    names = list(compiled.positiontup or ()) if compiled.positional else keys
    processors = [
        (index, process)
        for index, name in enumerate(names)
        if (process := _processor(table, name, dialect, rows[0][name])) is not None
    ]
    for start in range(0, len(rows), _CHUNK):  # bounded copies of the parameters
        _execute(connection, compiled, names, processors, rows[start : start + _CHUNK])


def _execute(
    connection: Any,
    compiled: Any,
    names: list[str],
    processors: list[tuple[int, Callable[[Any], Any]]],
    rows: Sequence[dict[str, Any]],
) -> None:
    get = itemgetter(*names)
    values = [get(row) for row in rows] if len(names) > 1 else [(get(row),) for row in rows]
    if processors:
        converted = []
        for row in values:
            items = list(row)
            for index, process in processors:
                items[index] = process(items[index])
            converted.append(tuple(items))
        values = converted
    params: list[Any] = (
        values if compiled.positional else [dict(zip(names, v, strict=True)) for v in values]
    )
    connection.exec_driver_sql(compiled.string, params)
