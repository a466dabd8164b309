// A small Prisma 7 program over MariaDB (driver adapter @prisma/adapter-mariadb, which
// sends every query with the `mariadb` connector's execute: binary protocol, prepare and
// direct execute pipelined) through wirecache, driven step by step by
// tests/mysql_plugin/test_prisma.py (see ../steps.mjs). Connects to DATABASE_URL
// (mysql://user:password@host:port/database) with a pool of POOL_SIZE connections
// (default 5). The client is generated from schema.prisma by `prisma generate` (the
// test runs it) into node_modules/.wirecache-prisma/mariadb-client.
import { createRequire } from "node:module";
import { PrismaMariaDb } from "@prisma/adapter-mariadb";
import { serveSteps } from "../steps.mjs";

const require = createRequire(import.meta.url);
const { PrismaClient } = require("../node_modules/.wirecache-prisma/mariadb-client");

const url = new URL(process.env.DATABASE_URL);
const poolSize = Number(process.env.POOL_SIZE || 5);

// The pool's connections, by the origin's connection id (the handshake wirecache relays),
// in the order the pool hands them out: which connection served each statement.
const acquired = [];
let pool = null;

// The adapter factory creates and owns its pool; keep a hand on it to watch it.
class ObservedPrismaMariaDb extends PrismaMariaDb {
  async connect() {
    const adapter = await super.connect();
    pool = adapter.underlyingDriver();
    pool.on("acquire", (conn) => acquired.push(conn.threadId));
    return adapter;
  }
}

const adapter = new ObservedPrismaMariaDb({
  host: url.hostname,
  port: Number(url.port),
  user: decodeURIComponent(url.username),
  password: decodeURIComponent(url.password),
  database: url.pathname.slice(1),
  connectionLimit: poolSize,
});
const prisma = new PrismaClient({ adapter });

await serveSteps({
  // An author with books, created in one nested write.
  async createAuthor({ email, name, titles }) {
    return prisma.author.create({
      data: { email, name, books: { create: titles.map((title) => ({ title })) } },
      include: { books: { orderBy: { id: "asc" } } },
    });
  },
  // Every author with their books (a relation read), ordered.
  async authorsWithBooks() {
    return prisma.author.findMany({
      orderBy: { id: "asc" },
      include: { books: { orderBy: { id: "asc" } } },
    });
  },
  async findAuthor({ email }) {
    return prisma.author.findUnique({ where: { email }, include: { books: true } });
  },
  // One author's books, no relation.
  async booksOf({ authorId }) {
    return prisma.book.findMany({ where: { authorId }, orderBy: { id: "asc" } });
  },
  // The same read `times` times in a row: the pool hands each one to its next
  // connection, so they land on every connection of the pool.
  async booksOfRepeated({ authorId, times }) {
    const answers = [];
    for (let i = 0; i < times; i++) {
      answers.push(await prisma.book.findMany({ where: { authorId }, orderBy: { id: "asc" } }));
    }
    return answers;
  },
  // The same read `times` times at once: they cannot share a connection.
  async booksOfConcurrently({ authorId, times }) {
    return Promise.all(
      Array.from({ length: times }, () =>
        prisma.book.findMany({ where: { authorId }, orderBy: { id: "asc" } }),
      ),
    );
  },
  async renameAuthor({ email, name }) {
    return prisma.author.update({ where: { email }, data: { name } });
  },
  async setCopies({ bookId, copies }) {
    return prisma.book.update({ where: { id: bookId }, data: { copies } });
  },
  // An interactive transaction: stock every book of an author and count them.
  async restock({ email, copies }) {
    return prisma.$transaction(async (tx) => {
      const author = await tx.author.findUniqueOrThrow({ where: { email } });
      const { count } = await tx.book.updateMany({
        where: { authorId: author.id },
        data: { copies },
      });
      const stocked = await tx.book.count({ where: { authorId: author.id, copies } });
      return { count, stocked };
    });
  },
  // A batch transaction: rename a book and add another one.
  async batch({ email, bookId, title, newTitle }) {
    const author = await prisma.author.findUniqueOrThrow({ where: { email } });
    const [renamed, created] = await prisma.$transaction([
      prisma.book.update({ where: { id: bookId }, data: { title } }),
      prisma.book.create({ data: { title: newTitle, authorId: author.id } }),
    ]);
    return { renamed, created };
  },
  // The connections handed out since the last call (origin connection ids), and the
  // pool's size.
  async connections() {
    const ids = acquired.splice(0);
    return { acquired: ids, total: pool ? pool.totalConnections() : 0 };
  },
  async close() {
    await prisma.$disconnect();
  },
});
