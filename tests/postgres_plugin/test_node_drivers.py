"""Node.js drivers through wirecache, on the extended query protocol: node-postgres
(`pg`, unnamed and named prepared statements), porsager `postgres` (named prepared
statements, pipelining) and Prisma 7 over `@prisma/adapter-pg`.

Each Node program (tests/node/*.mjs) is driven step by step over stdin/stdout (see
tests/node/steps.mjs), so a test can read the origin's statement log between two
steps and prove which reads wirecache answered: the origin logs every Execute that
reaches it. The npm packages come from tests/node/package.json and its lock file
(`npm install` in tests/node, which scripts/setup --test runs).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from servers.node import NODE_DIR, NodeProgram, prisma_generate, require_packages

USER = "scram_user"


def database_url(pg_server, proxy, user: str = USER) -> str:
    password = quote(pg_server.users[user], safe="")
    return f"postgresql://{user}:{password}@{proxy.host}:{proxy.port}/app?sslmode=disable"


@pytest.fixture
def node(pg_server, proxy, tmp_path):
    """Start a Node program of tests/node against ``proxy``: ``node("pg_client.mjs")``."""
    programs: list[NodeProgram] = []

    def start(script: str) -> NodeProgram:
        program = NodeProgram(script, database_url(pg_server, proxy), tmp_path)
        programs.append(program)
        return program

    yield start
    for program in programs:
        if program.proc.poll() is None:
            program.proc.kill()
            program.proc.wait()


@pytest.fixture
def items(pg_server) -> str:
    """A fresh table of three items, created directly at the origin; its name."""
    name = f"node_items_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.dsn(USER), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)")
            .format(sql.Identifier(name))
        )  # fmt: skip
        conn.execute(
            sql.SQL("INSERT INTO {} VALUES (1, 'apple', 10), (2, 'pear', 20), (3, 'plum', 30)")
            .format(sql.Identifier(name))
        )  # fmt: skip
    return name


# -- node-postgres --------------------------------------------------------------------


def test_pg_parameterized_query_hits_and_sees_writes(pg_server, node, items, marker):
    require_packages("pg")
    read = f"SELECT id, name, qty FROM {items} WHERE id = $1 {marker}"
    with node("pg_client.mjs") as pg:
        for _ in range(3):
            res = pg("query", text=read, values=[1])
            assert res["rows"] == [[1, "apple", 10]]
        assert pg_server.statement_count(marker) == 1
        # Another parameter value is another entry: a miss, then a hit.
        assert pg("query", text=read, values=[2])["rows"] == [[2, "pear", 20]]
        assert pg("query", text=read, values=[2])["rows"] == [[2, "pear", 20]]
        assert pg_server.statement_count(marker) == 2
        # node-postgres sends the string '1' exactly as it sends the number 1 (text
        # format, type left to the server): the same request, a hit.
        assert pg("query", text=read, values=["1"])["rows"] == [[1, "apple", 10]]
        assert pg_server.statement_count(marker) == 2

        res = pg("query", text=f"UPDATE {items} SET qty = $1 WHERE id = $2", values=[11, 1])
        assert (res["command"], res["rowCount"]) == ("UPDATE", 1)
        # Read-your-writes: the entry of id 1 is invalid now, so is the one of id 2
        # (wirecache invalidates per table).
        assert pg("query", text=read, values=[1])["rows"] == [[1, "apple", 11]]
        assert pg("query", text=read, values=[2])["rows"] == [[2, "pear", 20]]
        assert pg_server.statement_count(marker) == 4
        assert pg("query", text=read, values=[1])["rows"] == [[1, "apple", 11]]
        assert pg_server.statement_count(marker) == 4


def test_pg_named_prepared_statement(pg_server, node, items, marker):
    require_packages("pg")
    read = f"SELECT id, name, qty FROM {items} WHERE qty >= $1 ORDER BY id {marker}"
    with node("pg_client.mjs") as pg:
        # node-postgres parses 'get-items' on its first use only, then binds it.
        for _ in range(3):
            res = pg("query", name="get-items", text=read, values=[20])
            assert res["rows"] == [[2, "pear", 20], [3, "plum", 30]]
        assert pg_server.statement_count(marker) == 1
        # A miss on the statement that was parsed long ago and answered from the cache
        # since: the origin must know it (wirecache forwards or replays the Parse).
        res = pg("query", name="get-items", text=read, values=[5])
        assert res["rows"] == [[1, "apple", 10], [2, "pear", 20], [3, "plum", 30]]
        assert pg_server.statement_count(marker) == 2

        pg("query", name="set-qty", text=f"UPDATE {items} SET qty = $1 WHERE id = $2",
           values=[25, 1])  # fmt: skip
        res = pg("query", name="get-items", text=read, values=[20])
        assert res["rows"] == [[1, "apple", 25], [2, "pear", 20], [3, "plum", 30]]
        assert pg_server.statement_count(marker) == 3
        res = pg("query", name="get-items", text=read, values=[20])
        assert res["rows"] == [[1, "apple", 25], [2, "pear", 20], [3, "plum", 30]]
        assert pg_server.statement_count(marker) == 3


def test_pg_named_statement_hit_first_then_miss_on_new_connection(pg_server, node, items, marker):
    """A second connection whose first use of a named statement is a hit must still
    find the statement at the origin when its next execution is a miss."""
    require_packages("pg")
    read = f"SELECT name FROM {items} WHERE id = $1 {marker}"
    with node("pg_client.mjs") as first:
        assert first("query", name="name-of", text=read, values=[1])["rows"] == [["apple"]]
    with node("pg_client.mjs") as second:
        assert second("query", name="name-of", text=read, values=[1])["rows"] == [["apple"]]
        assert pg_server.statement_count(marker) == 1
        assert second("query", name="name-of", text=read, values=[3])["rows"] == [["plum"]]
        assert second("query", name="name-of", text=read, values=[1])["rows"] == [["apple"]]
        assert pg_server.statement_count(marker) == 2


def test_pg_object_rows_and_types(pg_server, node, marker):
    """Column names and types (RowDescription) served from the cache as from the origin."""
    require_packages("pg")
    read = (
        "SELECT $1::int AS n, $2::text AS t, $3::numeric(10,2) AS price, "
        f"ARRAY[$1::int, 2] AS arr, '{{\"a\": 1}}'::jsonb AS doc {marker}"
    )
    with node("pg_client.mjs") as pg:
        answers = [pg("query", text=read, values=[7, "seven", "7.5"], rowMode="object")
                   for _ in range(2)]  # fmt: skip
    assert answers[0] == answers[1]
    assert answers[0]["rows"] == [
        {"n": 7, "t": "seven", "price": "7.50", "arr": [7, 2], "doc": {"a": 1}}
    ]
    assert pg_server.statement_count(marker) == 1




def test_pg_placeholders_without_spaces(pg_server, node, items, marker):
    require_packages("pg")
    cached = f"SELECT name FROM {items} WHERE id = $1 {marker}"
    packed = f"SELECT id, qty FROM {items} WHERE id IN ($1,$2) ORDER BY id /* packed */ {marker}"
    with node("pg_client.mjs") as pg:
        assert pg("query", text=cached, values=[1])["rows"] == [["apple"]]
        for _ in range(2):
            assert pg("query", text=packed, values=[1, 3])["rows"] == [[1, 10], [3, 30]]
        # A read must neither be asked twice nor drop what the cache held.
        assert pg_server.statement_count("/* packed */") == 1
        assert pg("query", text=cached, values=[1])["rows"] == [["apple"]]
        assert pg_server.statement_count(marker) == 2


# -- porsager postgres (postgres.js) --------------------------------------------------


def test_postgresjs_prepared_reads_hit_and_see_writes(pg_server, node, items, marker):
    require_packages("postgres")
    apple = {"id": 1, "name": "apple", "qty": 10}
    with node("postgresjs_client.mjs") as pgjs:
        for _ in range(3):
            assert pgjs("get", table=items, id=1, marker=marker) == [apple]
        assert pg_server.statement_count(marker) == 1
        listed = pgjs("list", table=items, min=20, marker=marker)
        assert [r["id"] for r in listed] == [2, 3]
        assert pgjs("list", table=items, min=20, marker=marker) == listed
        assert pg_server.statement_count(marker) == 2

        assert pgjs("update", table=items, id=1, qty=99) == 1
        assert pgjs("get", table=items, id=1, marker=marker) == [{**apple, "qty": 99}]
        assert pg_server.statement_count(marker) == 3
        assert pgjs("get", table=items, id=1, marker=marker) == [{**apple, "qty": 99}]
        listed = pgjs("list", table=items, min=20, marker=marker)
        assert [r["id"] for r in listed] == [1, 2, 3]
        assert pg_server.statement_count(marker) == 4

    # A new connection (whose statements are new to it) is answered from the cache.
    with node("postgresjs_client.mjs") as again:
        assert again("get", table=items, id=1, marker=marker) == [{**apple, "qty": 99}]
        assert pg_server.statement_count(marker) == 4


def test_postgresjs_pipeline_mixing_hits_and_misses(pg_server, node, items, marker):
    require_packages("postgres")
    with node("postgresjs_client.mjs") as pgjs:
        assert pgjs("get", table=items, id=2, marker=marker) == [
            {"id": 2, "name": "pear", "qty": 20}
        ]
        assert pg_server.statement_count(marker) == 1
        # Sent before any answer is read: 2 is a hit, 1 and 3 are misses; every result
        # must come back in its own place.
        results = pgjs("pipelined", table=items, ids=[1, 2, 3, 2, 1], marker=marker)
        assert [[r["name"] for r in rows] for rows in results] == [
            ["apple"],
            ["pear"],
            ["plum"],
            ["pear"],
            ["apple"],
        ]
        # 1 and 3 reached the origin (1 at most twice: its second request may have been
        # sent before the first one's result was stored).
        after = pg_server.statement_count(marker)
        assert 3 <= after <= 4
        results = pgjs("pipelined", table=items, ids=[3, 2, 1], marker=marker)
        assert [[r["name"] for r in rows] for rows in results] == [["plum"], ["pear"], ["apple"]]
        assert pg_server.statement_count(marker) == after


# -- Prisma 7 -------------------------------------------------------------------------

PRISMA_DIR = NODE_DIR / "prisma"
PRISMA_CLIENT = NODE_DIR / "node_modules" / ".wirecache-prisma" / "client"
PRISMA_TABLES = """
DROP TABLE IF EXISTS wc_prisma_post, wc_prisma_user;
CREATE TABLE wc_prisma_user (
    id serial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL
);
CREATE TABLE wc_prisma_post (
    id serial PRIMARY KEY,
    title text NOT NULL,
    published boolean NOT NULL DEFAULT false,
    "authorId" integer NOT NULL REFERENCES wc_prisma_user (id)
);
"""
# Every read Prisma sends names its tables this way.
USER_TABLE = '"public"."wc_prisma_user"'
POST_TABLE = '"public"."wc_prisma_post"'


@pytest.fixture(scope="module")
def prisma_client(tmp_path_factory) -> Path:
    """The Prisma client of tests/node/prisma/schema.prisma, generated offline."""
    require_packages("prisma", "@prisma/client", "@prisma/adapter-pg", "pg")
    return prisma_generate(PRISMA_DIR / "schema.prisma", PRISMA_CLIENT,
                           tmp_path_factory.mktemp("prisma"))  # fmt: skip


@pytest.fixture
def prisma_tables(pg_server) -> None:
    """Prisma's tables, created at the origin with SQL (migrations need the schema
    engine, which cannot run here)."""
    with psycopg.connect(pg_server.dsn(USER), autocommit=True) as conn:
        conn.execute(PRISMA_TABLES)


def names(users: list[dict]) -> list[tuple[str, list[str]]]:
    return [(u["name"], [p["title"] for p in u["posts"]]) for u in users]


def origin_reads(pg_server, since: int) -> int:
    """Statements on Prisma's tables that reached the origin since ``since``."""
    return pg_server.statement_count(USER_TABLE, since=since) + pg_server.statement_count(
        POST_TABLE, since=since
    )


def test_prisma_program(pg_server, node, prisma_client, prisma_tables):
    with node("prisma/client.mjs") as prisma:
        alice = prisma("createUser", email="alice@example.com", name="Alice",
                       titles=["Hello", "Caching"])  # fmt: skip
        assert [p["title"] for p in alice["posts"]] == ["Hello", "Caching"]
        bob = prisma("createUser", email="bob@example.com", name="Bob", titles=["Proxies"])

        # findMany with a relation (one query per model).
        users = prisma("usersWithPosts")
        assert names(users) == [("Alice", ["Hello", "Caching"]), ("Bob", ["Proxies"])]

        # findUnique with its relation: the first one reaches the origin, the
        # repeated one is answered by wirecache.
        since = pg_server.log_position()
        found = prisma("findUser", email="bob@example.com")
        assert (found["name"], [p["title"] for p in found["posts"]]) == ("Bob", ["Proxies"])
        assert origin_reads(pg_server, since) == 2  # the user, then its posts
        since = pg_server.log_position()
        assert prisma("findUser", email="bob@example.com") == found
        assert origin_reads(pg_server, since) == 0

        # A repeated findMany, served from the cache.
        since = pg_server.log_position()
        posts = prisma("postsOf", authorId=alice["id"])
        assert [p["title"] for p in posts] == ["Hello", "Caching"]
        assert origin_reads(pg_server, since) == 1
        since = pg_server.log_position()
        assert prisma("postsOf", authorId=alice["id"]) == posts
        assert prisma("postsOf", authorId=alice["id"]) == posts
        assert origin_reads(pg_server, since) == 0

        # An update, then the next read sees it (and asks the origin again).
        renamed = prisma("renameUser", email="bob@example.com", name="Robert")
        assert renamed["name"] == "Robert"
        since = pg_server.log_position()
        found = prisma("findUser", email="bob@example.com")
        assert (found["name"], [p["title"] for p in found["posts"]]) == ("Robert", ["Proxies"])
        # Only the user's table was written: its posts still come from the cache.
        assert pg_server.statement_count(USER_TABLE, since=since) == 1
        assert pg_server.statement_count(POST_TABLE, since=since) == 0
        users = prisma("usersWithPosts")
        assert names(users) == [("Alice", ["Hello", "Caching"]), ("Robert", ["Proxies"])]

        # An interactive transaction; its writes are seen once it has committed.
        assert prisma("publishedPosts") == []
        assert prisma("postsOf", authorId=alice["id"]) == posts  # cached, unpublished
        assert prisma("publishAll", email="alice@example.com") == {"count": 2, "published": 2}
        since = pg_server.log_position()
        posts = prisma("postsOf", authorId=alice["id"])
        assert [(p["title"], p["published"]) for p in posts] == [
            ("Hello", True), ("Caching", True)
        ]  # fmt: skip
        assert origin_reads(pg_server, since) == 1
        since = pg_server.log_position()
        assert prisma("postsOf", authorId=alice["id"]) == posts
        assert origin_reads(pg_server, since) == 0
        published = prisma("publishedPosts")
        assert [(p["title"], p["author"]["name"]) for p in published] == [
            ("Hello", "Alice"), ("Caching", "Alice")
        ]  # fmt: skip

        # A batch transaction: the cached findMany sees both of its writes.
        hello = alice["posts"][0]["id"]
        result = prisma("batch", email="alice@example.com", postId=hello,
                        title="Hello, world", newTitle="Pooling")  # fmt: skip
        assert result["renamed"]["title"] == "Hello, world"
        assert result["created"]["title"] == "Pooling"
        since = pg_server.log_position()
        posts = prisma("postsOf", authorId=alice["id"])
        assert [p["title"] for p in posts] == ["Hello, world", "Caching", "Pooling"]
        assert origin_reads(pg_server, since) == 1
        users = prisma("usersWithPosts")
        assert names(users) == [
            ("Alice", ["Hello, world", "Caching", "Pooling"]), ("Robert", ["Proxies"])
        ]  # fmt: skip
        assert prisma("postsOf", authorId=bob["id"])[0]["title"] == "Proxies"

    # What the origin says, directly.
    with psycopg.connect(pg_server.dsn(USER), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT u.name, p.title, p.published FROM wc_prisma_post p "
            'JOIN wc_prisma_user u ON u.id = p."authorId" ORDER BY p.id'
        ).fetchall()
    assert rows == [
        ("Alice", "Hello, world", True),
        ("Alice", "Caching", True),
        ("Robert", "Proxies", False),
        ("Alice", "Pooling", False),
    ]


def test_prisma_find_many_with_relation_of_several_rows_is_cached(
    pg_server, node, prisma_client, prisma_tables
):
    """An include over several parents reads the children with `IN ($1,$2)`."""
    with node("prisma/client.mjs") as prisma:
        prisma("createUser", email="alice@example.com", name="Alice", titles=["Hello"])
        prisma("createUser", email="bob@example.com", name="Bob", titles=["Proxies"])
        users = prisma("usersWithPosts")
        since = pg_server.log_position()
        assert prisma("usersWithPosts") == users
        assert origin_reads(pg_server, since) == 0
