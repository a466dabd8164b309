"""Statement classification with sqlglot: is this a read we may cache, and what does it write?

The classifier is shared by every dialect; a dialect supplies only its
:class:`ClassifierRules` (the sqlglot dialect name, its keyword lists and its
function lists). The rules of DESIGN.md are applied here, once:

* whatever is not fully understood is ``UNKNOWN``: forwarded, never cached,
  and treated as a write whose targets are unknown (the whole database is
  invalidated after it), because it might be ``CALL proc()``;
* a read is cacheable only if it calls no volatile, user-defined or unknown
  function, takes no row locks, selects into nothing and modifies nothing;
* a multi-statement text is cacheable only if every statement is a cacheable
  read, and every write in it invalidates.

sqlglot parses some statements as something else (``SAVEPOINT a`` and
``DISCARD ALL`` come back as a column alias), so the first keyword of each
statement is checked before sqlglot sees it.

Parsing costs tens to hundreds of microseconds, so :class:`Classifier` memoises
results by exact statement text; a cache hit never reaches sqlglot.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

# sqlglot warns on every statement it falls back to parsing as a Command;
# those are expected here (they classify as UNKNOWN) and must not flood logs.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

#: The pseudo table that stands for the system catalogs: every DDL statement
#: bumps it, every read of a catalog table depends on it.
CATALOG = "__catalog__"

#: Longest template text kept for statistics and logs.
TEMPLATE_LIMIT = 500


class StatementKind(enum.Enum):
    """What a statement does, as far as the cache is concerned."""

    READ = "read"
    WRITE = "write"
    DDL = "ddl"
    TRANSACTION = "transaction"
    SESSION = "session"
    UNKNOWN = "unknown"
    EMPTY = "empty"


class TxEffect(enum.Enum):
    """How a statement changes the transaction state of the session."""

    NONE = "none"
    BEGIN = "begin"
    END = "end"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Classification:
    """Everything the cache needs to know about one statement text.

    ``writes`` is ``None`` when the statement may write but its targets cannot
    be determined (the whole database is then invalidated). Table names are
    bare, lower-cased relation names: ``public.users`` and ``users`` are the
    same table to the cache, which can only over-invalidate, never miss a
    write. ``ttl`` is settled by the cache's policy (plugins and the default
    TTL); 0 means the statement is not cached.
    """

    kind: StatementKind
    cacheable: bool
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] | None = frozenset()
    reason: str = ""
    changes_session: bool = False
    tx: TxEffect = TxEffect.NONE
    fingerprint: str = ""
    template: str = ""
    ttl: float = 0.0
    #: True when acknowledging this statement must invalidate something. Derived
    #: from ``writes`` once, not a property: relays read it several times for
    #: every statement they pass through.
    is_write: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_write", self.writes is None or bool(self.writes))


@dataclass(frozen=True)
class ClassifierRules:
    """What a dialect tells the shared classifier.

    Keyword sets hold upper-case first keywords. Function sets hold lower-case
    names as sqlglot reports them (``exp.Anonymous.name`` for functions it does
    not model, ``sql_name()`` for those it does).
    """

    sqlglot_dialect: str
    #: First keywords of transaction control statements, with their effect.
    transaction_keywords: dict[str, TxEffect]
    #: First keywords of statements that change session state (SET, RESET…).
    session_keywords: frozenset[str]
    #: First keywords of statements that neither return cacheable rows nor
    #: change table data (LISTEN, VACUUM, SHOW…): forwarded, nothing invalidated.
    harmless_keywords: frozenset[str]
    #: Functions whose result is not a function of the arguments and the
    #: session (now(), random()…): the statement is not cached, nothing is
    #: invalidated.
    volatile_functions: frozenset[str]
    #: Functions that change session state (set_config…).
    session_functions: frozenset[str]
    #: Functions that sqlglot does not model but are known to be
    #: deterministic for a given session: they keep a read cacheable.
    deterministic_functions: frozenset[str] = frozenset()
    #: Schema names whose tables are system catalogs (depend on DDL).
    catalog_schemas: frozenset[str] = frozenset()
    #: Table-name prefixes of system catalogs (``pg_``).
    catalog_prefixes: tuple[str, ...] = ()
    #: Refines a parsed statement: returns a Classification to use instead of
    #: the generic one, or None. For dialect quirks (MySQL user variables…).
    refine: Callable[[exp.Expression, Classification], Classification | None] | None = field(
        default=None, compare=False
    )
    #: Rewrites a statement's text before sqlglot sees it, for text sqlglot
    #: mis-tokenizes (the text sent to the origin is never changed).
    prepare: Callable[[str], str] | None = field(default=None, compare=False)


# sqlglot function classes that are volatile in every dialect we know.
_VOLATILE_CLASSES = frozenset(
    {
        "CurrentTimestamp",
        "CurrentDate",
        "CurrentTime",
        "CurrentDatetime",
        "Rand",
        "Uuid",
        "Localtime",
        "Localtimestamp",
        "UnixSeconds",
        "CurrentTimestampLTZ",
        "SysTimestamp",
        "UtcTimestamp",
        "UtcDate",
        "UtcTime",
    }
)

_READ_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Table)
_WRITE_ROOTS = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.TruncateTable)
_DDL_ROOTS = (exp.Create, exp.Drop, exp.Alter, exp.Comment, exp.Grant, exp.Revoke)
_DML_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge)


def _fingerprint(template: str) -> str:
    return hashlib.blake2b(template.encode(), digest_size=8).hexdigest()


def _unknown(reason: str, *, writes: frozenset[str] | None = None) -> Classification:
    return Classification(
        StatementKind.UNKNOWN, False, writes=writes, reason=reason, changes_session=True
    )


class Classifier:
    """Classifies statement texts of one dialect, memoised by exact text.

    ``policy`` is applied to every fresh cacheable classification (it settles
    the TTL and may forbid caching); it runs once per distinct text, which is
    how plugin policy hooks stay off the hot path.
    """

    def __init__(
        self,
        rules: ClassifierRules,
        policy: Callable[[Classification], Classification] | None = None,
        memo_size: int = 10_000,
    ) -> None:
        self.rules = rules
        self._policy = policy
        self._memo: OrderedDict[str | bytes, Classification] = OrderedDict()
        self._memo_size = memo_size
        self._dialect = sqlglot.Dialect.get_or_raise(rules.sqlglot_dialect)

    def classify(self, text: str | bytes) -> Classification:
        """Classify ``text`` (a str, or UTF-8 bytes as they came off the wire)."""
        memo = self._memo
        found = memo.get(text)
        if found is not None:
            memo.move_to_end(text)
            return found
        raw = text.encode() if isinstance(text, str) else text
        shape = literal_shape(raw)
        result = memo.get(shape) if shape is not None else None
        if result is not None:
            # Kept recent: texts with new literals each time would push it out.
            memo.move_to_end(shape)  # type: ignore[arg-type]
        else:
            result = self.classify_uncached(raw.decode("utf-8", "replace"))
            if result.cacheable and self._policy is not None:
                result = self._policy(result)
            if shape is not None:
                memo[shape] = result
        memo[text] = result
        while len(memo) > self._memo_size:
            memo.popitem(last=False)
        return result

    # -- the rules ---------------------------------------------------------

    def classify_uncached(self, sql: str) -> Classification:
        """Classify without the memo or the policy (for tests and tools)."""
        if self.rules.prepare is not None:
            sql = self.rules.prepare(sql)
        try:
            parts = self._split(sql)
        except SqlglotError as e:
            return _unknown(f"cannot tokenize: {e}")
        parts = [p for p in parts if p.strip()]
        if not parts:
            return Classification(StatementKind.EMPTY, False, reason="empty statement")
        results = [self._classify_one(p) for p in parts]
        return results[0] if len(results) == 1 else self._combine(results)

    def _split(self, sql: str) -> list[str]:
        """Split on top-level semicolons using the dialect's own tokenizer."""
        tokens = self._dialect.tokenize(sql)
        parts, start = [], 0
        for tok in tokens:
            if tok.token_type == TokenType.SEMICOLON:
                parts.append(sql[start : tok.start])
                start = tok.end + 1
        parts.append(sql[start:])
        return parts

    def _classify_one(self, sql: str) -> Classification:
        rules = self.rules
        first = _first_keyword(sql)
        if first in rules.transaction_keywords:
            return Classification(
                StatementKind.TRANSACTION,
                False,
                reason="transaction control",
                tx=rules.transaction_keywords[first],
            )
        if first in rules.session_keywords:
            return Classification(
                StatementKind.SESSION, False, reason="session statement", changes_session=True
            )
        if first in rules.harmless_keywords:
            return Classification(StatementKind.UNKNOWN, False, reason=f"{first} is not cached")
        try:
            tree = sqlglot.parse_one(sql, dialect=self._dialect)
        except SqlglotError as e:
            return self._unparsed(sql, first, str(e)[:200])
        if tree is None:
            return Classification(StatementKind.EMPTY, False, reason="empty statement")
        result = self._classify_tree(tree)
        if rules.refine is not None:
            refined = rules.refine(tree, result)
            if refined is not None:
                result = refined
        if result.kind is StatementKind.READ and not result.template:
            template = _template(tree, self._dialect)
            result = replace(result, template=template, fingerprint=_fingerprint(template))
        return result

    def _unparsed(self, sql: str, first: str, error: str) -> Classification:
        """A statement sqlglot cannot parse: never cached; a write to anything unless
        its tokens show a plain query.

        Drivers send catalog queries sqlglot does not parse (asyncpg's type
        introspection, on every connection): calling those writes would
        invalidate the whole database each time. A text that starts like a
        query, contains no data-modifying or locking keyword and calls only
        functions sqlglot or the dialect knows as built-ins reads, and nothing
        more.
        """
        if first not in ("SELECT", "WITH", "VALUES", "TABLE"):
            return _unknown(f"cannot parse: {error}")
        try:
            tokens = self._dialect.tokenize(sql)
        except SqlglotError:
            return _unknown(f"cannot parse: {error}")
        kinds = {t.token_type for t in tokens}
        if kinds & _MODIFYING_TOKENS:
            return _unknown(f"cannot parse: {error}")
        known = _BUILTIN_FUNCTIONS | self.rules.deterministic_functions
        for name in _called(tokens):
            if name in self.rules.session_functions or name not in known:
                return _unknown(f"cannot parse, and calls {name}(): {error}")
        return Classification(StatementKind.READ, False, reason=f"cannot parse: {error}")

    def _classify_tree(self, tree: exp.Expression) -> Classification:
        if isinstance(tree, exp.Command):
            return _unknown(f"{tree.name.upper() or 'command'} is not understood")
        if isinstance(tree, _DDL_ROOTS):
            tables = self._tables(tree)
            return Classification(
                StatementKind.DDL,
                False,
                writes=(tables | {CATALOG}) if tables else None,
                reason="DDL",
                changes_session=isinstance(tree, exp.Create) and _is_temporary(tree),
            )
        if isinstance(tree, _WRITE_ROOTS):
            return Classification(
                StatementKind.WRITE,
                False,
                reads=self._tables(tree),
                writes=self._tables(tree) or None,
                reason="write",
            )
        if isinstance(tree, exp.Copy):
            tables = self._tables(tree)
            if tree.args.get("kind"):  # COPY … FROM loads rows into the table
                return Classification(
                    StatementKind.WRITE, False, writes=tables or None, reason="COPY FROM"
                )
            return Classification(StatementKind.READ, False, reads=tables, reason="COPY TO")
        if isinstance(tree, _READ_ROOTS):
            return self._classify_read(tree)
        return _unknown(f"{type(tree).__name__} is not understood")

    def _classify_read(self, tree: exp.Expression) -> Classification:
        tables = self._tables(tree)
        if any(tree.find_all(*_DML_NODES)):
            return Classification(
                StatementKind.WRITE,
                False,
                reads=tables,
                writes=tables or None,
                reason="data-modifying CTE",
            )
        for select in tree.find_all(exp.Select):
            if select.args.get("into") is not None:
                return Classification(
                    StatementKind.WRITE, False, reads=tables, writes=None, reason="SELECT … INTO"
                )
            if select.args.get("locks"):
                return Classification(
                    StatementKind.READ, False, reads=tables, reason="row locks (FOR UPDATE/SHARE)"
                )
        verdict = self._functions_verdict(tree)
        if verdict is not None:
            return replace(verdict, reads=tables)
        return Classification(StatementKind.READ, True, reads=tables)

    def _functions_verdict(self, tree: exp.Expression) -> Classification | None:
        """Return why the functions called make a read uncacheable, or None."""
        rules = self.rules
        for func in tree.find_all(exp.Func):
            if isinstance(func, exp.Anonymous):
                name = func.name.lower()
                if name in rules.deterministic_functions:
                    continue
            else:
                name = func.sql_name().lower()
                if type(func).__name__ not in _VOLATILE_CLASSES and name not in (
                    rules.volatile_functions | rules.session_functions
                ):
                    continue
            if name in rules.session_functions:
                return Classification(
                    StatementKind.UNKNOWN,
                    False,
                    reason=f"{name}() changes the session",
                    changes_session=True,
                )
            if name in rules.volatile_functions or type(func).__name__ in _VOLATILE_CLASSES:
                return Classification(StatementKind.READ, False, reason=f"{name}() is volatile")
            return _unknown(f"{name}() may have side effects", writes=None)
        return None

    def _tables(self, tree: exp.Expression) -> frozenset[str]:
        """Bare lower-case names of the relations ``tree`` touches (CTE names excluded)."""
        rules = self.rules
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        names: set[str] = set()
        for table in tree.find_all(exp.Table):
            name = table.name.lower()
            if not name or name in ctes:
                continue
            schema = table.db.lower()
            if schema in rules.catalog_schemas or name.startswith(
                rules.catalog_prefixes or ("\0",)
            ):
                names.add(CATALOG)
            names.add(name)
        return frozenset(names)

    def _combine(self, results: list[Classification]) -> Classification:
        """One classification for a multi-statement text."""
        cacheable = all(r.cacheable for r in results)
        writes: frozenset[str] | None = frozenset()
        for r in results:
            writes = None if (writes is None or r.writes is None) else writes | r.writes
        # A COMMIT anywhere in the text ends a transaction (invalidation follows END).
        effects = [r.tx for r in results if r.tx is not TxEffect.NONE]
        tx = TxEffect.END if TxEffect.END in effects else next(iter(effects), TxEffect.NONE)
        kinds = {r.kind for r in results}
        kind = kinds.pop() if len(kinds) == 1 else StatementKind.UNKNOWN
        reasons = [r.reason for r in results if r.reason]
        template = "; ".join(r.template for r in results) if cacheable else ""
        return Classification(
            kind,
            cacheable,
            reads=frozenset().union(*(r.reads for r in results)),
            writes=writes,
            reason="; ".join(reasons),
            changes_session=any(r.changes_session for r in results),
            tx=tx,
            fingerprint=_fingerprint(template) if cacheable else "",
            template=template[:TEMPLATE_LIMIT],
        )


# Plain single-quoted strings and numbers not glued to a word, a placeholder
# or a dot. The pattern starts with one character class so that re skips to
# candidates quickly (an alternation of a literal and a class does not get
# that); which literal it is, and a number's left edge, are then checked by
# lookbehinds. About twice as fast as the plain alternation with a leading
# ``(?<![\w$.])``.
_LITERAL = re.compile(
    rb"""[0-9']
    (?:
        (?<=') [^']*' (?:'[^']*')*                 # a string, '' inside
      | (?<=[0-9]) (?<![\w$.][0-9])               # a number not glued on the left
        [0-9]* (?:\.[0-9]+)? (?:[eE][-+]?[0-9]+)? (?![\w.])
    )""",
    re.VERBOSE,
)
# What makes that simple lexing unreliable: dollar quotes and placeholders,
# backslashes, quoted identifiers and ``#`` (single bytes, found by one
# translate), comments, and prefixed strings (E'', B'', X'', N'', U&''),
# found from their quote.
_UNLEXABLE_BYTES = b'$\\"`#'
_PREFIXED_STRING = re.compile(rb"'(?<=[eEbBxXnN]')(?<!\w..)|'(?<=[uU]&')")


def literal_shape(text: bytes) -> bytes | None:
    """``text`` with literals replaced by ``?``, or None when it cannot be done safely.

    Texts sent with literals inlined (the simple protocol, client-side
    binding) differ on every request while their classification does not:
    a literal cannot add a function call, a table or a lock. Sharing the
    memo entry by this shape pays sqlglot once per template instead of once
    per text. It runs for every such text, on the hot path of pass-through
    (about 2.3 us for a pgbench UPDATE).
    """
    if (
        len(text.translate(None, _UNLEXABLE_BYTES)) != len(text)
        or text.find(b"--") >= 0  # (``in`` tries the needle as an int first: slower)
        or text.find(b"/*") >= 0
        or _PREFIXED_STRING.search(text)
    ):
        return None
    return b"\0shape:" + _LITERAL.sub(b"?", text)


#: Token types that may make a query modify data or lock rows.
_MODIFYING_TOKENS = frozenset(
    {
        TokenType.INSERT, TokenType.UPDATE, TokenType.DELETE, TokenType.MERGE,
        TokenType.INTO, TokenType.FOR, TokenType.LOCK, TokenType.COPY,
    }
)  # fmt: skip
#: Functions sqlglot models: built-ins of some dialect, never user-defined.
_BUILTIN_FUNCTIONS = frozenset(name.lower() for name in exp.FUNCTION_BY_NAME)


def _called(tokens: list) -> list[str]:
    """Names called as functions: ``name (`` not followed, after the matching
    parenthesis, by ``AS (`` (that is a CTE with a column list)."""
    names = []
    for i in range(len(tokens) - 1):
        if tokens[i + 1].token_type != TokenType.L_PAREN:
            continue
        if tokens[i].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
            continue
        depth, j = 0, i + 1
        while j < len(tokens):
            if tokens[j].token_type == TokenType.L_PAREN:
                depth += 1
            elif tokens[j].token_type == TokenType.R_PAREN:
                depth -= 1
                if depth == 0:
                    break
            j += 1
        after = tokens[j + 1 : j + 3]
        if (
            len(after) == 2
            and after[0].token_type == TokenType.ALIAS
            and (after[1].token_type == TokenType.L_PAREN)
        ):
            continue
        names.append(tokens[i].text.lower())
    return names


def _first_keyword(sql: str) -> str:
    """The first word of a statement, upper-cased, skipping comments and parentheses."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace() or c == "(":
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            break
    j = i
    while j < n and (sql[j].isalnum() or sql[j] == "_"):
        j += 1
    return sql[i:j].upper()


def _is_temporary(tree: exp.Expression) -> bool:
    props = tree.args.get("properties")
    return bool(props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions))


def _template(tree: exp.Expression, dialect: sqlglot.Dialect) -> str:
    """The statement with literals replaced by ``?``: the key of per-template statistics."""

    def strip(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) and not isinstance(node.parent, exp.Parameter):
            return exp.var("?")
        return node

    try:
        return tree.transform(strip).sql(dialect=dialect)[:TEMPLATE_LIMIT]
    except SqlglotError:
        return tree.sql(dialect=dialect)[:TEMPLATE_LIMIT]
