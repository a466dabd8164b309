// A small Prisma 7 program (driver adapter @prisma/adapter-pg over node-postgres)
// through wirecache, driven step by step by tests/postgres_plugin/test_node_drivers.py
// (see ../steps.mjs). Connects to DATABASE_URL. The client is generated from
// schema.prisma by `prisma generate` (the test runs it) into
// node_modules/.wirecache-prisma/client.
import { createRequire } from "node:module";
import { PrismaPg } from "@prisma/adapter-pg";
import { serveSteps } from "../steps.mjs";

const require = createRequire(import.meta.url);
const { PrismaClient } = require("../node_modules/.wirecache-prisma/client");

const adapter = new PrismaPg({ connectionString: process.env.DATABASE_URL });
const prisma = new PrismaClient({ adapter });

await serveSteps({
  // A user with posts, created in one nested write.
  async createUser({ email, name, titles }) {
    return prisma.user.create({
      data: { email, name, posts: { create: titles.map((title) => ({ title })) } },
      include: { posts: { orderBy: { id: "asc" } } },
    });
  },
  // Every user with their posts (a relation read), ordered.
  async usersWithPosts() {
    return prisma.user.findMany({
      orderBy: { id: "asc" },
      include: { posts: { orderBy: { id: "asc" } } },
    });
  },
  async findUser({ email }) {
    return prisma.user.findUnique({ where: { email }, include: { posts: true } });
  },
  // One user's posts, no relation.
  async postsOf({ authorId }) {
    return prisma.post.findMany({ where: { authorId }, orderBy: { id: "asc" } });
  },
  // Published posts with their authors.
  async publishedPosts() {
    return prisma.post.findMany({
      where: { published: true },
      orderBy: { id: "asc" },
      include: { author: true },
    });
  },
  async renameUser({ email, name }) {
    return prisma.user.update({ where: { email }, data: { name } });
  },
  // An interactive transaction: publish a user's posts and count them, atomically.
  async publishAll({ email }) {
    return prisma.$transaction(async (tx) => {
      const user = await tx.user.findUniqueOrThrow({ where: { email } });
      const { count } = await tx.post.updateMany({
        where: { authorId: user.id },
        data: { published: true },
      });
      const published = await tx.post.count({ where: { authorId: user.id, published: true } });
      return { count, published };
    });
  },
  // A batch transaction: rename a post and add another one.
  async batch({ email, postId, title, newTitle }) {
    const user = await prisma.user.findUniqueOrThrow({ where: { email } });
    const [renamed, created] = await prisma.$transaction([
      prisma.post.update({ where: { id: postId }, data: { title } }),
      prisma.post.create({ data: { title: newTitle, authorId: user.id } }),
    ]);
    return { renamed, created };
  },
  async close() {
    await prisma.$disconnect();
  },
});
