# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""PostgreSQL connections for the shipshape.ops modules: psycopg2 when importable, else psycopg 3.

The options match the ``shipshape.ops.postgres`` doc fragment. Both drivers expose the same DB-API
surface used here (``connect``, cursors, ``sql.SQL``/``sql.Identifier``), so callers only see
:func:`connect`, :func:`count_query` and :func:`sqlstate`.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.shipshape.ops.plugins.module_utils import pg_catalog


def import_driver():
    """(driver module, its sql module, name, None) for psycopg2, else psycopg 3, else
    (None, None, None, traceback of the last ImportError)."""
    try:
        import psycopg2
        import psycopg2.sql
        return psycopg2, psycopg2.sql, "psycopg2", None
    except ImportError:
        pass
    try:
        import psycopg
        import psycopg.sql
        return psycopg, psycopg.sql, "psycopg", None
    except ImportError:
        return None, None, None, traceback.format_exc()


DRIVER, sql, DRIVER_NAME, IMPORT_ERROR = import_driver()

# SQLSTATE codes callers look for.
UNDEFINED_TABLE = "42P01"


def postgres_argument_spec():
    """The connection options (see the shipshape.ops.postgres doc fragment)."""
    return dict(
        db=dict(type="str", required=True),
        host=dict(type="str", default=""),
        port=dict(type="int", default=5432),
        user=dict(type="str", default=""),
        password=dict(type="str", default="", no_log=True),
        unix_socket=dict(type="path", default=""),
        connect_timeout=dict(type="int", default=10),
    )


def ensure_driver(module):
    """Fail the module with Ansible's standard message when neither driver can be imported."""
    if DRIVER is None:
        module.fail_json(
            msg=missing_required_lib("psycopg2 (python3-psycopg2) or psycopg"),
            exception=IMPORT_ERROR,
        )


def connect_kwargs(params):
    """libpq keywords for the module's options; an empty host means the Unix socket."""
    kwargs = dict(dbname=params["db"], port=params["port"], connect_timeout=params["connect_timeout"])
    if params["host"]:
        kwargs["host"] = params["host"]
    elif params["unix_socket"]:
        kwargs["host"] = params["unix_socket"]
    if params["user"]:
        kwargs["user"] = params["user"]
    if params["password"]:
        kwargs["password"] = params["password"]
    return kwargs


def connect(module):
    """An open connection (not autocommit), or fail_json naming where it tried to connect."""
    ensure_driver(module)
    kwargs = connect_kwargs(module.params)
    try:
        return DRIVER.connect(**kwargs)
    except Exception as exc:  # the drivers' OperationalError and friends
        where = kwargs.get("host") or "the local Unix socket"
        module.fail_json(
            msg="Cannot connect to database %s on %s port %s as %s: %s"
            % (kwargs["dbname"], where, kwargs["port"], kwargs.get("user", "the current OS user"), str(exc).strip()),
            driver=DRIVER_NAME,
        )


def sqlstate(exc):
    """The SQLSTATE of a driver error (psycopg2: pgcode, psycopg 3: sqlstate), or None."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def conninfo_dbname(name):
    """``dbname='NAME'`` (libpq's quoting: a backslash or a quote escaped by a backslash) for the -d of psql,
    pg_restore and pg_dump, which take a value holding '=' (or starting postgres://) for a whole connection string:
    "dbname=shop host=elsewhere" would connect there. Quoted, NAME is only ever a database's name; the other parameters still come from the
    environment (PGHOST, PGPORT, PGUSER)."""
    return "dbname='%s'" % name.replace("\\", "\\\\").replace("'", "\\'")


def count_query(parts):
    """``SELECT count(*)`` of the table (schema, table) or (table,), identifiers quoted by the driver."""
    return sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*parts))


# A table name part: a name in double quotes as SQL writes one ('.' allowed inside, '"' doubled), or anything
# without '.' or '"', taken verbatim.
_TABLE_PART = r'"((?:[^"]|"")+)"|([^".]+)'
TABLE_NAME = re.compile(r"(?:%s)(?:\.(?:%s))?" % (_TABLE_PART, _TABLE_PART))


def split_table_name(name):
    """'schema.table' -> ('schema', 'table'); 'table' -> ('table',). Names are taken verbatim (no case folding: matched
    exactly, as quoted identifiers are); a part holding '.' or '"' is written in double quotes, '"' doubled, as in SQL:
    'crm."order.items"' -> ('crm', 'order.items'). ValueError for anything else (more than one '.' outside quotes, an
    empty part, an unclosed quote)."""
    match = TABLE_NAME.fullmatch(name)
    if not match:
        raise ValueError("%r is not a table name or schema.table (a name holding '.' or '\"' goes in double quotes, "
                         "'\"' doubled: crm.\"order.items\")" % name)
    quoted1, plain1, quoted2, plain2 = match.groups()
    parts = [quoted1.replace('""', '"') if quoted1 is not None else plain1]
    if quoted2 is not None or plain2 is not None:
        parts.append(quoted2.replace('""', '"') if quoted2 is not None else plain2)
    return tuple(parts)


# --- reading a database: what a backup manifest records, and what a restored copy is checked against ---

def fetch_value(cursor, query, args=None):
    """The first column of the first row, or None when there are no rows."""
    cursor.execute(query, args)
    row = cursor.fetchone()
    return row[0] if row else None


def read_revision(cursor, query):
    """The revision, or None when the query's table does not exist (the savepoint keeps the
    transaction usable after that error)."""
    if not query:
        return None
    cursor.execute("SAVEPOINT shipshape_revision")
    try:
        value = fetch_value(cursor, query)
    except Exception as exc:  # the driver's ProgrammingError / UndefinedTable
        if sqlstate(exc) != UNDEFINED_TABLE:
            raise
        cursor.execute("ROLLBACK TO SAVEPOINT shipshape_revision")
        return None
    cursor.execute("RELEASE SAVEPOINT shipshape_revision")
    return None if value is None else str(value)


def table_exists(cursor, parts):
    """Whether the (schema, table) or (table,) names a relation, resolved as quoted identifiers."""
    if len(parts) == 2:
        query = "SELECT to_regclass(quote_ident(%s) || '.' || quote_ident(%s)) IS NOT NULL"
    else:
        query = "SELECT to_regclass(quote_ident(%s)) IS NOT NULL"
    return bool(fetch_value(cursor, query, parts))


def count_rows(cursor, parts):
    return int(fetch_value(cursor, count_query(parts)))


def describe(cursor, tables, revision_query, catalog=False):
    """Name, server version, schema revision and row counts of the connected database, from one read-only
    snapshot: {database, server_version, revision, row_counts, tables_missing}, and with ``catalog`` the whole
    database (``catalog``: every table, row counts, sequences, views, functions, owners, grants; see
    module_utils/pg_catalog). ``tables`` only adds names to count and to require; it never narrows the catalog.
    The caller ends the transaction."""
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    # Row level security would hide rows from a role it applies to and the counts would be short: off, the server
    # refuses such a count instead (pg_dump does the same), and the error names the table.
    cursor.execute(pg_catalog.ROW_SECURITY_OFF)
    found = dict(
        database=fetch_value(cursor, "SELECT current_database()"),
        server_version=fetch_value(cursor, "SHOW server_version"),
        revision=read_revision(cursor, revision_query),
    )
    row_counts = {}
    missing = []
    for name in tables:
        parts = split_table_name(name)
        if table_exists(cursor, parts):
            row_counts[name] = count_rows(cursor, parts)
        else:
            missing.append(name)
    found["row_counts"] = row_counts
    found["tables_missing"] = missing
    if catalog:
        found["catalog"] = pg_catalog.describe(cursor, sql)
    return found


#: The lines of pg_restore's and psql's errors that echo the dump's SQL: pg_restore's "Command was:" (the whole
#: statement, on the lines after it too, up to the next "pg_restore:" line) and psql's "LINE n:" context with its
#: caret line. A dump's SQL holds passwords (CREATE USER MAPPING ... OPTIONS (password '...'), CREATE SUBSCRIPTION
#: ... CONNECTION '...password=...') and data; the module's result reaches logs and run artifacts.
_ECHOED_SQL = re.compile(r"\A(Command was:|LINE [0-9]+:)")
_TOOL_LINE = re.compile(r"\A(pg_restore|psql|pg_dump|gzip|zstd)(:|\s)")
SQL_NOT_SHOWN = "(the statement is not shown: a dump's SQL may hold passwords)"


def error_tail(text, lines=3):
    """The last ``lines`` non-blank lines of a restore tool's error output, joined by " | ", with the SQL it echoes
    (see _ECHOED_SQL) replaced by SQL_NOT_SHOWN once per statement."""
    kept, echoing = [], False
    for line in (text or "").strip().splitlines():
        if not line.strip():
            continue
        if _ECHOED_SQL.match(line.strip()):
            echoing = True
            kept.append(SQL_NOT_SHOWN)
            continue
        if echoing and not _TOOL_LINE.match(line):
            continue  # the rest of the statement, or psql's caret line
        echoing = False
        kept.append(line)
    deduplicated = [line for i, line in enumerate(kept) if not (line == SQL_NOT_SHOWN and i and kept[i - 1] == SQL_NOT_SHOWN)]
    return " | ".join(deduplicated[-lines:])


def pipe(producer, consumer, **popen):
    """``producer | consumer`` without a shell: two argv lists joined by an OS pipe, the producer in a thread; the
    consumer's output is discarded. ``popen`` (env, cwd, preexec_fn) goes to both. Returns both CompletedProcess
    (stderr captured, bytes)."""
    read_fd, write_fd = os.pipe()
    produced = {}

    def produce():
        try:
            produced["proc"] = subprocess.run(producer, stdout=write_fd, stderr=subprocess.PIPE, check=False, **popen)
        finally:
            os.close(write_fd)  # the consumer sees the end of its input

    thread = threading.Thread(target=produce)
    thread.start()
    try:
        consumed = subprocess.run(consumer, stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  check=False, **popen)
    finally:
        os.close(read_fd)  # a producer still writing gets EPIPE and ends
        thread.join()
    return produced["proc"], consumed


# --- names a restore creates: validated before they reach SQL, argv or a path ---

#: PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
MAX_IDENTIFIER_BYTES = 63
#: The suffixes of the names a restore derives from a database's: the scratch copy and the replaced database.
RESTORING_SUFFIX = "_restoring"
BEFORE_SUFFIX = "_before_"
#: The longest suffix derived_name takes: it keeps at least one byte of the name and its 7-byte ``_<hash>`` tag.
MAX_DERIVED_SUFFIX_BYTES = MAX_IDENTIFIER_BYTES - 8
IDENTIFIER_PATTERN = r"[A-Za-z_][A-Za-z0-9_$]*"
_IDENTIFIER = re.compile(r"\A%s\Z" % IDENTIFIER_PATTERN)
#: A database name: an identifier, or one with '-' after its first character (my-app, app-production, common where
#: databases are made with createdb). Every use quotes it (sql.Identifier, psql's :"db") or passes it as one argv item,
#: so a '-' is safe inside; a leading '-' would read as an option, and '=' or a space as a connection string.
DATABASE_PATTERN = r"[A-Za-z_][A-Za-z0-9_$-]*"
_DATABASE = re.compile(r"\A%s\Z" % DATABASE_PATTERN)
_DATABASE_CHARACTERS = "letters, digits, _, $ and -, starting with a letter or _"


def _name_error(option, value, regex, what, pattern, characters):
    if not isinstance(value, str) or not regex.match(value):
        return "%s: %r is not %s: expected %s (%s)" % (option, value, what, pattern, characters)
    if len(value.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        return "%s: %r is %d bytes long: expected at most %d" % (
            option, value, len(value.encode("utf-8")), MAX_IDENTIFIER_BYTES)
    return None


def derived_name(name, suffix):
    """NAME followed by SUFFIX, within PostgreSQL's 63 bytes: a name too long for that keeps as much of its start as
    fits, then ``_`` and six hex digits of NAME's SHA-256, so two long names that share their start stay apart, and
    the same name always gives the same derived one (a later run finds what an earlier one left). Raises ValueError
    for an empty NAME or a SUFFIX that leaves no room for the start of one (more than 55 bytes)."""
    if not name or len(suffix.encode("utf-8")) > MAX_DERIVED_SUFFIX_BYTES:
        raise ValueError("expected a name and a suffix of at most %d bytes, got %r and %r"
                         % (MAX_DERIVED_SUFFIX_BYTES, name, suffix))
    whole = name + suffix
    if len(whole.encode("utf-8")) <= MAX_IDENTIFIER_BYTES:
        return whole
    tag = "_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    room = MAX_IDENTIFIER_BYTES - len((tag + suffix).encode("utf-8"))
    return name.encode("utf-8")[:room].decode("utf-8", "ignore") + tag + suffix


#: The stamp of a replaced database's name (``_before_YYYYmmddHHMMSS``): UTC, to the second.
BEFORE_STAMP_FORMAT = "%Y%m%d%H%M%S"
BEFORE_STAMP_DIGITS = 14


def before_name(name, stamp):
    """The name the database NAME is kept under once replaced at STAMP (14 digits), within 63 bytes."""
    return derived_name(name, BEFORE_SUFFIX + stamp)


def before_name_shown(name):
    """before_name with ``<time>`` for its stamp, for a message written before the time is known: a long NAME shows
    shortened as it will be (the shortening depends on the stamp's length only)."""
    return before_name(name, "0" * BEFORE_STAMP_DIGITS)[:-BEFORE_STAMP_DIGITS] + "<time>"


def identifier_error(option, value):
    """None when ``value`` is a plain PostgreSQL identifier of at most 63 bytes; else one line naming the option,
    the value and what was expected."""
    return _name_error(option, value, _IDENTIFIER, "a PostgreSQL identifier", IDENTIFIER_PATTERN,
                       "letters, digits, _ and $, not starting with a digit")


def database_name_error(option, value):
    """As :func:`identifier_error`, for a database name, which may also hold '-' after its first character."""
    return _name_error(option, value, _DATABASE, "a database name", DATABASE_PATTERN,
                       _DATABASE_CHARACTERS)


def role_name_error(option, value):
    """As :func:`database_name_error`, for the role that owns a database (app-owner): quoted in SQL, one argv item
    after --role."""
    return _name_error(option, value, _DATABASE, "a role name", DATABASE_PATTERN, _DATABASE_CHARACTERS)


def connect_to(module, dbname, autocommit=False):
    """An open connection to ``dbname`` with the module's other connection options, or fail_json."""
    ensure_driver(module)
    kwargs = connect_kwargs(dict(module.params, db=dbname))
    try:
        conn = DRIVER.connect(**kwargs)
    except Exception as exc:  # the drivers' OperationalError and friends
        where = kwargs.get("host") or "the local Unix socket"
        module.fail_json(
            msg="Cannot connect to database %s on %s port %s as %s: %s"
            % (dbname, where, kwargs["port"], kwargs.get("user", "the current OS user"), str(exc).strip()),
            driver=DRIVER_NAME,
        )
    conn.autocommit = autocommit
    return conn
