"""Prisma 7 over MariaDB (``@prisma/adapter-mariadb``) through wirecache.

The adapter sends every statement with the ``mariadb`` connector's ``execute`` (binary
protocol; with its prepare cache off, COM_STMT_PREPARE and a direct COM_STMT_EXECUTE
with statement id 0xFFFFFFFF pipelined, then COM_STMT_CLOSE) over a pool. The pool
hands its idle connections out in turn, so one logical sequence of Prisma calls is
spread over all of them: a write through one connection must invalidate what the
others read next. tests/node/prisma-mariadb/client.mjs is driven step by step (see
tests/node/steps.mjs) and hits are proven from MariaDB's general log.

The client is generated offline as for PostgreSQL (tests/postgres_plugin/
test_node_drivers.py); the tables are created with SQL directly at the origin, since
migrations need Prisma's schema engine, which cannot be downloaded here.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pymysql
import pytest
from servers.node import NODE_DIR, NodeProgram, prisma_generate, require_packages

PRISMA_DIR = NODE_DIR / "prisma-mariadb"
PRISMA_CLIENT = NODE_DIR / "node_modules" / ".wirecache-prisma" / "mariadb-client"
USER = "native_user"
POOL_SIZE = 5
TABLES = (
    "DROP TABLE IF EXISTS wc_prisma_book, wc_prisma_author",
    """CREATE TABLE wc_prisma_author (
        id INT AUTO_INCREMENT PRIMARY KEY,
        email VARCHAR(191) NOT NULL UNIQUE,
        name VARCHAR(100) NOT NULL
    )""",
    """CREATE TABLE wc_prisma_book (
        id INT AUTO_INCREMENT PRIMARY KEY,
        title VARCHAR(200) NOT NULL,
        copies INT NOT NULL DEFAULT 0,
        authorId INT NOT NULL,
        FOREIGN KEY (authorId) REFERENCES wc_prisma_author (id)
    )""",
)
# Every statement Prisma sends names its tables this way.
AUTHOR_TABLE = "`wc_prisma_author`"
BOOK_TABLE = "`wc_prisma_book`"


@pytest.fixture(scope="module")
def prisma_client(tmp_path_factory) -> Path:
    """The Prisma client of tests/node/prisma-mariadb/schema.prisma, generated offline."""
    require_packages("prisma", "@prisma/client", "@prisma/adapter-mariadb")
    return prisma_generate(PRISMA_DIR / "schema.prisma", PRISMA_CLIENT,
                           tmp_path_factory.mktemp("prisma"))  # fmt: skip


@pytest.fixture
def prisma_tables(mariadb_server) -> None:
    """Prisma's tables, created at the origin directly."""
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs(USER, "app", tls=False,
                                                           autocommit=True))  # fmt: skip
    with conn, conn.cursor() as cur:
        for statement in TABLES:
            cur.execute(statement)


@pytest.fixture
def prisma(mariadb_server, proxy, prisma_client, prisma_tables, tmp_path, monkeypatch):
    password = quote(mariadb_server.users[USER], safe="")
    url = f"mysql://{USER}:{password}@{proxy.host}:{proxy.port}/app"
    monkeypatch.setenv("POOL_SIZE", str(POOL_SIZE))  # the adapter's connectionLimit
    with NodeProgram("prisma-mariadb/client.mjs", url, tmp_path) as program:
        yield program


def origin_reads(server, since: int, table: str | None = None) -> int:
    """Statements on Prisma's tables that reached the origin since ``since``."""
    tables = [table] if table else [AUTHOR_TABLE, BOOK_TABLE]
    return sum(server.statement_count(t, since=since) for t in tables)


def titles(authors: list[dict]) -> list[tuple[str, list[str]]]:
    return [(a["name"], [b["title"] for b in a["books"]]) for a in authors]


def test_prisma_mariadb_program(mariadb_server, prisma):
    alice = prisma("createAuthor", email="alice@example.com", name="Alice",
                   titles=["Hello", "Caching"])  # fmt: skip
    assert [b["title"] for b in alice["books"]] == ["Hello", "Caching"]
    bob = prisma("createAuthor", email="bob@example.com", name="Bob", titles=["Proxies"])

    # findMany with a relation (one query per model), then served from the cache.
    authors = prisma("authorsWithBooks")
    assert titles(authors) == [("Alice", ["Hello", "Caching"]), ("Bob", ["Proxies"])]
    since = mariadb_server.log_position()
    assert prisma("authorsWithBooks") == authors
    assert prisma("authorsWithBooks") == authors
    assert origin_reads(mariadb_server, since) == 0

    # findUnique with its relation: the first one reaches the origin, the repeated
    # one is answered by wirecache.
    since = mariadb_server.log_position()
    found = prisma("findAuthor", email="bob@example.com")
    assert (found["name"], [b["title"] for b in found["books"]]) == ("Bob", ["Proxies"])
    assert origin_reads(mariadb_server, since) == 2  # the author, then the books
    since = mariadb_server.log_position()
    assert prisma("findAuthor", email="bob@example.com") == found
    assert origin_reads(mariadb_server, since) == 0

    # An update, then the next read sees it (and asks the origin again); the books
    # were not written: they still come from the cache.
    assert prisma("renameAuthor", email="bob@example.com", name="Robert")["name"] == "Robert"
    since = mariadb_server.log_position()
    found = prisma("findAuthor", email="bob@example.com")
    assert (found["name"], [b["title"] for b in found["books"]]) == ("Robert", ["Proxies"])
    assert origin_reads(mariadb_server, since, AUTHOR_TABLE) == 1
    assert origin_reads(mariadb_server, since, BOOK_TABLE) == 0
    assert titles(prisma("authorsWithBooks")) == [
        ("Alice", ["Hello", "Caching"]), ("Robert", ["Proxies"])
    ]  # fmt: skip

    # An interactive transaction; its writes are seen once it has committed.
    books = prisma("booksOf", authorId=alice["id"])
    assert [b["copies"] for b in books] == [0, 0]
    assert prisma("restock", email="alice@example.com", copies=3) == {"count": 2, "stocked": 2}
    since = mariadb_server.log_position()
    books = prisma("booksOf", authorId=alice["id"])
    assert [(b["title"], b["copies"]) for b in books] == [("Hello", 3), ("Caching", 3)]
    assert origin_reads(mariadb_server, since) == 1
    since = mariadb_server.log_position()
    assert prisma("booksOf", authorId=alice["id"]) == books
    assert origin_reads(mariadb_server, since) == 0

    # A batch transaction: the cached findMany sees both of its writes.
    hello = alice["books"][0]["id"]
    result = prisma("batch", email="alice@example.com", bookId=hello, title="Hello, world",
                    newTitle="Pooling")  # fmt: skip
    assert (result["renamed"]["title"], result["created"]["title"]) == ("Hello, world",
                                                                         "Pooling")  # fmt: skip
    books = prisma("booksOf", authorId=alice["id"])
    assert [b["title"] for b in books] == ["Hello, world", "Caching", "Pooling"]
    assert titles(prisma("authorsWithBooks")) == [
        ("Alice", ["Hello, world", "Caching", "Pooling"]), ("Robert", ["Proxies"])
    ]  # fmt: skip
    assert prisma("booksOf", authorId=bob["id"])[0]["title"] == "Proxies"

    # What the origin says, directly.
    conn = pymysql.connect(**mariadb_server.pymysql_kwargs(USER, "app", tls=False))
    with conn, conn.cursor() as cur:
        cur.execute("SELECT a.name, b.title, b.copies FROM wc_prisma_book b "
                    "JOIN wc_prisma_author a ON a.id = b.authorId ORDER BY b.id")  # fmt: skip
        assert cur.fetchall() == (
            ("Alice", "Hello, world", 3), ("Alice", "Caching", 3), ("Robert", "Proxies", 0),
            ("Alice", "Pooling", 0),
        )  # fmt: skip


def test_prisma_mariadb_pool_of_five_sees_a_write_on_every_connection(mariadb_server, prisma):
    """A write through one pooled connection invalidates what every other connection of
    the pool had cached: each of them reads the new value (once from the origin, then
    from the cache)."""
    alice = prisma("createAuthor", email="alice@example.com", name="Alice",
                   titles=["Hello", "Caching"])  # fmt: skip
    # Let the pool open all its connections, and fill the cache through each of them.
    answers = prisma("booksOfConcurrently", authorId=alice["id"], times=2 * POOL_SIZE)
    assert all([b["title"] for b in books] == ["Hello", "Caching"] for books in answers)
    pooled = prisma("connections")
    assert pooled["total"] == POOL_SIZE
    assert len(set(pooled["acquired"])) == POOL_SIZE
    since = mariadb_server.log_position()
    answers = prisma("booksOfRepeated", authorId=alice["id"], times=2 * POOL_SIZE)
    assert all(books == answers[0] for books in answers)
    assert origin_reads(mariadb_server, since) == 0  # every connection: hits
    assert len(set(prisma("connections")["acquired"])) == POOL_SIZE

    hello = alice["books"][0]["id"]
    for copies in (7, 8, 9):
        # The write goes through one connection of the pool...
        assert prisma("setCopies", bookId=hello, copies=copies)["copies"] == copies
        (writer,) = prisma("connections")["acquired"]
        # ...then several reads, handed out to each connection in turn, the writer's
        # and all the others: every one sees the write.
        since = mariadb_server.log_position()
        answers = prisma("booksOfRepeated", authorId=alice["id"], times=2 * POOL_SIZE)
        assert [[b["copies"] for b in books] for books in answers] == [[copies, 0]] * (
            2 * POOL_SIZE
        )
        readers = prisma("connections")["acquired"]
        assert len(set(readers)) == POOL_SIZE and writer in readers
        assert set(readers) - {writer}
        # The first read after the write misses, the other ones hit the new entry.
        assert origin_reads(mariadb_server, since, BOOK_TABLE) == 1
        # Concurrent reads on all connections at once see it as well.
        answers = prisma("booksOfConcurrently", authorId=alice["id"], times=2 * POOL_SIZE)
        assert [[b["copies"] for b in books] for books in answers] == [[copies, 0]] * (
            2 * POOL_SIZE
        )
        prisma("connections")
