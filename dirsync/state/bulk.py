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
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session


def _processor(table: Table, key: str, dialect: Any, sample: Any) -> Callable[[Any], Any]:
    process = table.c[key].type._cached_bind_processor(dialect)
    if process is None:
        return lambda value: value
    if not isinstance(sample, datetime):
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
    processors = [_processor(table, key, dialect, rows[0][key]) for key in keys]
    if compiled.positional:
        order = [keys.index(name) for name in compiled.positiontup or ()]
        columns = [(keys[i], processors[i]) for i in order]
        params: list[Any] = [tuple(p(row[k]) for k, p in columns) for row in rows]
    else:
        pairs = list(zip(keys, processors, strict=True))
        params = [{k: p(row[k]) for k, p in pairs} for row in rows]
    connection.exec_driver_sql(compiled.string, params)
