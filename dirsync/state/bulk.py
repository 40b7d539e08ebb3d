"""Bulk inserts of plain tuples, straight to the driver's executemany.

``session.execute(insert(table), rows)`` is already one executemany, but SQLAlchemy builds
every row's parameters in Python (``construct_params`` and each column type's bind processor),
and callers build a dict per row for it: at 100,000 invites, events and mirror rows that is
most of an apply. Here the INSERT is compiled once for the dialect, the values that are the same
in every row (organization, timestamps, run) are bound once, and each row is a tuple of the
varying values, handed to the DBAPI cursor's ``executemany`` in the dialect's parameter style.
Same SQL, same types (a column whose values need bind processing still gets it), same
transaction (the session's connection). On PostgreSQL the rows go through ``COPY ... FROM
STDIN`` instead (psycopg 3's ``Cursor.copy``): one stream per slice rather than a statement per
row, several times less work on both sides.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table, func, insert, select
from sqlalchemy.orm import Session

#: rows per executemany: the same statement, in slices, so parameter copies stay small
_CHUNK = 20_000
#: plan rows (events, invites, group edges) built and inserted at a time: a first sync of
#: 100,000 users would otherwise hold 100,000 rows (and their encoded JSON) at once
SLICE = 10_000
#: inserting at least this many rows, more than a table holds, rebuild its secondary indexes
#: afterwards (``indexes_rebuilt_after``) rather than maintaining them row by row
REBUILD_AT = 10_000

Process = Callable[[Any], Any]


def table_of(model: type[Any]) -> Table:
    """The Core table behind an ORM model (what bulk statements are built on)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class BulkInsert:
    """``INSERT INTO table (columns..., constants...)``, compiled once, fed tuples.

    ``constants`` are bound once (their types' bind processing applied once); each row is a
    tuple of the ``columns``' values in that order. A column listed in ``json_text`` takes
    JSON documents already encoded (``encode_json``): they go to the driver as they are where
    the dialect's own processing would produce that very text, and are decoded and processed
    like any other value where it would not (psycopg 3 binds a JSON adapter, for instance).
    """

    def __init__(
        self,
        session: Session,
        table: Table,
        columns: Sequence[str],
        *,
        constants: Mapping[str, Any] | None = None,
        json_text: Iterable[str] = (),
    ) -> None:
        constants = dict(constants or {})
        for column in table.columns:  # the INSERT would bind a default: bind it as a constant
            default = column.default
            if column.key not in constants and column.key not in columns and default is not None:
                if not default.is_scalar:
                    raise TypeError(f"{table.name}.{column.key}: give a value, not a default")
                constants[column.key] = default.arg  # type: ignore[attr-defined]
        self._connection = session.connection()
        dialect = self._connection.dialect
        keys = [*columns, *constants]
        self._copy: str | None = None
        if dialect.name == "postgresql":
            quote = dialect.identifier_preparer.quote
            names_sql = ", ".join(quote(table.columns[key].name) for key in keys)
            self._copy = (
                f"COPY {dialect.identifier_preparer.format_table(table)} ({names_sql}) FROM STDIN"
            )
        compiled = insert(table).compile(dialect=dialect, column_keys=keys)
        self._sql = compiled.string
        names = list(compiled.positiontup or ()) if compiled.positional else keys
        self._names = None if compiled.positional else names
        # a row's values, then the constants: one tuple, reordered into the statement's order
        fixed = tuple(_process_once(table, key, dialect, value) for key, value in constants.items())
        self._fixed = fixed
        layout = [keys.index(name) for name in names]
        self._reorder: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None
        if layout != list(range(len(keys))):
            get = itemgetter(*layout)
            self._reorder = get if len(layout) > 1 else lambda row: (get(row),)
        text = set(json_text)
        self._processors = [
            (index, process)
            for index, name in enumerate(columns)
            if (process := _column_processor(table, name, dialect, json_text=name in text))
        ]

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        for start in range(0, len(rows), _CHUNK):  # bounded copies of the parameters
            self._execute(rows[start : start + _CHUNK])

    def _execute(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._processors:
            rows = [self._process(row) for row in rows]
        fixed, reorder = self._fixed, self._reorder
        if self._copy is not None:
            self._copy_rows(rows)
            return
        if reorder is not None:
            rows = [reorder(row + fixed) for row in rows]
        elif fixed:
            rows = [row + fixed for row in rows]
        params: Any = rows
        if self._names is not None:  # a named parameter style (pyformat, named)
            names = self._names
            params = [dict(zip(names, row, strict=True)) for row in rows]
        self._connection.exec_driver_sql(self._sql, params)

    def _copy_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """PostgreSQL: the rows (then the constants) in the COPY's column order, streamed."""
        assert self._copy is not None
        fixed = self._fixed
        driver = self._connection.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(self._copy) as copy:
            write = copy.write_row
            for row in rows:
                write(row + fixed)

    def _process(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        items = list(row)
        for index, process in self._processors:
            items[index] = process(items[index])
        return tuple(items)


def encode_json(value: Any) -> str | None:
    """A JSON column's value as text, as SQLAlchemy's default serialiser writes it; None
    stays None (SQL NULL, as ``JSON(none_as_null=True)`` stores it)."""
    return None if value is None else _encode(value)


def json_string(value: str | None) -> str:
    """A string (or None) as a JSON value, exactly as ``json.dumps`` writes it."""
    return "null" if value is None else _escape(value)


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps`` with its default settings, without the encoder object ``dumps`` builds
    on every call (half of the cost of a small document)."""
    try:
        from json.encoder import c_make_encoder  # type: ignore[attr-defined]  # CPython's C
    except ImportError:  # pragma: no cover - other interpreters: the ordinary encoder
        return json.JSONEncoder().encode
    if c_make_encoder is None:  # pragma: no cover - CPython built without _json
        return json.JSONEncoder().encode
    # the arguments JSONEncoder.iterencode passes for the defaults (no indent, sort_keys off)
    encoder = c_make_encoder(
        None,
        json.JSONEncoder().default,
        encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_encode = _json_encoder()
#: json.dumps's own string escaping (the C function where there is one)
_escape: Callable[[str], str] = encode_basestring_ascii


def _process_once(table: Table, key: str, dialect: Any, value: Any) -> Any:
    process: Process | None = table.c[key].type._cached_bind_processor(dialect)
    return value if process is None else process(value)


def _column_processor(table: Table, key: str, dialect: Any, *, json_text: bool) -> Process | None:
    column_type = table.c[key].type
    if json_text and not isinstance(column_type, JSON):
        raise TypeError(f"{table.name}.{key} is not a JSON column")
    process: Process | None = column_type._cached_bind_processor(dialect)
    if process is None:
        return None
    if json_text:
        sample = {"a": [1, 2.5, "é", None], "b": {"c": True}}
        if process(sample) == encode_json(sample) and process(None) is None:
            return None  # the text is what the dialect would bind: as it is
        return lambda text: process(None if text is None else json.loads(text))
    memo: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            memo[value] = result = process(value)
            return result

    # timestamps and flags repeat (one "now" per apply): process each distinct value once
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        return process
    return cached if python_type in (datetime, bool) else process


@contextmanager
def indexes_rebuilt_after(
    session: Session, table: Table, adding: int, *, at: int = REBUILD_AT
) -> Iterator[None]:
    """For a first sync of a large directory on SQLite: drop the table's secondary indexes,
    insert (``adding`` rows, an estimate will do), and create them again, all inside the
    caller's transaction (SQLite's DDL is transactional, so a crash or rollback leaves them as
    they were). Building an index from 100,000 rows at once costs a fraction of updating it
    for each of 100,000 inserts in a random order. Below ``at`` rows, on other dialects, and
    for tables already holding more rows than are added, the indexes stay as they are."""
    connection = session.connection()
    rebuild = adding >= at and connection.dialect.name == "sqlite"
    if rebuild:
        held = session.execute(select(func.count()).select_from(table)).scalar_one()
        rebuild = held < adding
    if not rebuild:
        yield
        return
    indexes = sorted(table.indexes, key=lambda index: str(index.name))
    for index in indexes:
        index.drop(connection)
    yield
    for index in indexes:
        index.create(connection)
