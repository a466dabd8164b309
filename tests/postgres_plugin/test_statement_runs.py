"""Statement runs: [Parse] Bind [Describe] Execute Sync in one read, as drivers send a
statement, forwarded as one unit when the cache neither answers nor stores it
(Relay._run_through). They must behave exactly like the message-by-message path:
the same bytes back, the same statements known afterwards, errors anywhere in
the run, and writes invalidated when they commit."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wirecache_postgres import messages as m
from wirecache_postgres.extended import split_run_answer, statement_run

from postgres_plugin.rawpg import RawConnection, rows
from postgres_plugin.util import connect, trust_user_table

INT4 = 23


def _run(parse: bytes | None, statement: str, values: list[bytes], describe: bool) -> bytes:
    return b"".join(
        [
            *([parse] if parse is not None else []),
            m.bind("", statement, [], values, []),
            *([m.describe("P", "")] if describe else []),
            m.execute(),
            m.SYNC,
        ]
    )


# -- recognising a run ----------------------------------------------------------


def test_runs_are_recognised_with_their_parse_statement_values_and_describe():
    parse = m.prepare("", "SELECT $1::int", [INT4])
    one = m.bind("", "", [], [b"1"], [])[7:]  # the Bind body after its two names
    assert statement_run(_run(parse, "", [b"1"], True)) == (parse, b"", one, True)
    assert statement_run(_run(None, "s1", [b"1"], False)) == (None, b"s1", one, False)
    assert statement_run(_run(None, "", [], True)) == (None, b"", b"\0\0\0\0\0\0", True)


# -- cutting a run's answer into the entries the long path stores ---------------

_ANSWER = m.PARSE_COMPLETE + m.BIND_COMPLETE
_DESCRIPTION = b"T" + (6).to_bytes(4, "big") + b"\0\0"  # (no columns)
_NOTICE = m.notice_response("NOTICE", "00000", "x")
_ROWS = b"D\0\0\0\x0b\0\x01\0\0\0\x011" * 2 + m.command_complete("SELECT 2")


@pytest.mark.parametrize(
    ("answer", "parsed", "described", "expected"),
    [
        (_ANSWER + _DESCRIPTION + _ROWS, True, True, (_DESCRIPTION, _ROWS)),
        (m.BIND_COMPLETE + m.NO_DATA + _ROWS, False, True, (m.NO_DATA, _ROWS)),
        (m.BIND_COMPLETE + _ROWS, False, False, (b"", _ROWS)),
        (m.BIND_COMPLETE + m.command_complete("SELECT 0"), False, False,
         (b"", m.command_complete("SELECT 0"))),
        # anything else in it, or anything missing: nothing is stored
        (_ANSWER + _ROWS, True, True, None),
        (m.BIND_COMPLETE + _DESCRIPTION + _ROWS, True, True, None),
        (_ANSWER + _DESCRIPTION + _ROWS[:-1], True, True, None),
        (_ANSWER + _DESCRIPTION + _ROWS + m.NO_DATA, True, True, None),
        (_ANSWER + _DESCRIPTION + _NOTICE + _ROWS, True, True, None),
        (_ANSWER + _DESCRIPTION + _ROWS[:13] + m.PORTAL_SUSPENDED, True, True, None),
    ],
)  # fmt: skip
def test_a_runs_answer_is_cut_where_the_long_path_would_store_it(
    answer, parsed, described, expected
):
    assert split_run_answer(answer, parsed, described) == expected


@given(st.binary(max_size=60), st.booleans(), st.booleans())
def test_hostile_answers_are_cut_only_when_framed_end_to_end(data, parsed, described):
    cut = split_run_answer(data, parsed, described)
    if cut is not None:
        # Then the answer is exactly its parts, the result ending in a CommandComplete.
        description, rows = cut
        head = (m.PARSE_COMPLETE if parsed else b"") + m.BIND_COMPLETE
        assert data == head + description + rows
        assert rows[rows.rfind(b"C") :].startswith(b"C")


@pytest.mark.parametrize(
    "data",
    [
        # a named portal, a row limit, a Flush instead of Sync, two runs, no Sync
        m.bind("p", "s1", [], [], []) + m.execute("p") + m.SYNC,
        m.bind("", "s1", [], [], []) + m.execute("", 1) + m.SYNC,
        m.bind("", "s1", [], [], []) + m.execute() + m.FLUSH,
        (m.bind("", "s1", [], [], []) + m.execute() + m.SYNC) * 2,
        m.bind("", "s1", [], [], []) + m.execute(),
        # a Parse of a named statement, a Describe of the statement, a Close
        m.prepare("s1", "SELECT 1") + m.bind("", "s1", [], [], []) + m.execute() + m.SYNC,
        m.bind("", "s1", [], [], []) + m.describe("S", "s1") + m.execute() + m.SYNC,
        m.bind("", "s1", [], [], []) + m.close("P", "") + m.execute() + m.SYNC,
        m.query("SELECT 1") + m.SYNC,
    ],
)
def test_anything_else_is_not_a_run(data):
    assert statement_run(data) is None


@given(st.binary(max_size=80))
def test_hostile_bytes_are_never_a_run_unless_framed_as_one(data):
    run = statement_run(data)
    if run is not None:
        # Then the bytes are a Bind of the unnamed portal ... Execute ... Sync,
        # framed end to end exactly as the origin will read them.
        assert data.endswith(m.SYNC)
        assert data[:1] in (b"P", b"B")


@given(st.binary(min_size=0, max_size=40), st.integers(0, 60))
def test_a_truncated_or_corrupted_run_is_refused_or_still_framed(noise, cut):
    data = _run(m.prepare("", "SELECT $1::int", [INT4]), "", [b"7"], True)
    corrupted = data[:cut] + noise + data[cut + len(noise) :]
    run = statement_run(corrupted)
    if run is not None:
        assert corrupted.endswith(m.SYNC)


# -- behaviour against a real origin ----------------------------------------------


@pytest.fixture(scope="module")
def table(pg_server) -> str:
    return trust_user_table(
        pg_server, "runs", "id int PRIMARY KEY, v int",
        "INSERT INTO {t} SELECT i, i FROM generate_series(1, 5) i", "SELECT, UPDATE",
    )  # fmt: skip


#: (SQL with {t} for the table, parameter count); the last two fail at the origin.
TEXTS = [
    ("SELECT id, v FROM {t} WHERE id >= $1 ORDER BY id", 1),
    ("SELECT now() IS NOT NULL", 0),  # never cached: always a run
    ("SELECT 10 / $1::int", 1),  # division by zero for 0, at Execute
    ("SELEC 1", 0),  # a syntax error, at Parse
]


@st.composite
def steps(draw) -> list[tuple]:
    """A session: statement runs (with or without a Parse of the unnamed statement,
    or of the named statement prepared at the start), inside or outside an
    explicit transaction, some failing."""
    out: list[tuple] = [("prepare",)]
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["parsed", "parsed", "unnamed", "named", "tx"]))
        if kind == "tx":
            out.append(("query", draw(st.sampled_from(["BEGIN", "COMMIT", "ROLLBACK"]))))
        else:
            text = draw(st.integers(0, len(TEXTS) - 1))
            out.append((kind, text, draw(st.integers(0, 3)), draw(st.booleans())))
    return out


def _messages(step: tuple, table: str) -> bytes:
    if step[0] == "prepare":
        return m.prepare("s1", TEXTS[0][0].format(t=table), [INT4]) + m.SYNC
    if step[0] == "query":
        return m.query(step[1])
    kind, text, value, describe = step
    sql, params = TEXTS[text]
    values = [str(value).encode()] * params
    if kind == "named":
        return _run(None, "s1", [str(value).encode()], describe)
    parse = m.prepare("", sql.format(t=table), [INT4] * params) if kind == "parsed" else None
    return _run(parse, "", values, describe)


def _ask(conn: RawConnection, data: bytes) -> list[tuple[str, bytes]]:
    """Send one request (one Sync or one Query) in one write; its answer."""
    conn.send(data)
    return conn.read_until_ready(1)


def _session(host: str, port: int, session: list[tuple], table: str) -> list:
    """Each step sent alone and answered before the next, as drivers do."""
    with RawConnection(host, port) as conn:
        return [_ask(conn, _messages(step, table)) for step in session]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(session=steps())
def test_runs_answer_exactly_what_the_origin_answers(pg_server, proxy, table, session):
    direct = _session(pg_server.host, pg_server.port, session, table)
    assert _session(proxy.host, proxy.port, session, table) == direct  # cold
    assert _session(proxy.host, proxy.port, session, table) == direct  # warm


def test_after_a_failed_parse_the_unnamed_statement_is_gone(pg_server, proxy, table):
    """PostgreSQL drops the unnamed statement before parsing a new one: after a run
    whose Parse fails, a Bind of the unnamed statement fails too, even when the
    statement before it was cached."""
    tag = uuid.uuid4().hex
    sql = f"SELECT id, v FROM {table} WHERE id >= $1 ORDER BY id /* {tag} */"
    good = _run(m.prepare("", sql, [INT4]), "", [b"2"], True)
    # (A read wirecache would cache, of a table that does not exist: it fails at Parse.)
    bad = _run(m.prepare("", f"SELECT v FROM {table}_missing WHERE id = $1", [INT4]), "",
               [b"2"], True)  # fmt: skip
    again = _run(None, "", [b"2"], True)

    def session(host: str, port: int) -> list:
        with RawConnection(host, port) as conn:
            return [_ask(conn, good), _ask(conn, good), _ask(conn, bad), _ask(conn, again)]

    direct = session(pg_server.host, pg_server.port)
    assert [kind for kind, _ in direct[3]] == ["E", "Z"]
    assert pg_server.statement_count(tag) == 2
    assert session(proxy.host, proxy.port) == direct
    assert pg_server.statement_count(tag) == 3  # the second good run was a hit


def test_writes_in_runs_inside_a_transaction_invalidate_at_commit(pg_server, proxy, table):
    """A write run inside BEGIN … COMMIT is not committed by its CommandComplete and
    bumps nothing then; COMMIT bumps it before the client sees COMMIT's answer."""
    tag = uuid.uuid4().hex
    read = f"SELECT v FROM {table} WHERE id = 3 /* {tag} */"
    update = m.prepare("", f"UPDATE {table} SET v = v + $1 WHERE id = 3", [INT4])
    with connect(pg_server, proxy) as reader:
        reader.autocommit = True
        before = reader.execute(read).fetchone()[0]
        assert reader.execute(read).fetchone()[0] == before  # cached now
        with RawConnection(proxy.host, proxy.port) as writer:
            writer.run(m.query("BEGIN"))
            assert [kind for kind, _ in _ask(writer, _run(update, "", [b"100"], True))] == [
                "1", "2", "n", "C", "Z",
            ]  # fmt: skip
            # Not committed: the other session still reads the old value (from the cache).
            seen = pg_server.statement_count(tag)
            assert reader.execute(read).fetchone()[0] == before
            assert pg_server.statement_count(tag) == seen
            writer.run(m.query("COMMIT"))
            assert reader.execute(read).fetchone()[0] == before + 100
            assert rows(writer.run(m.query(read))) == [[str(before + 100)]]
