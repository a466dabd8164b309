// porsager `postgres` (postgres.js) through wirecache, driven step by step by
// tests/postgres_plugin/test_node_drivers.py (see steps.mjs). Connects to
// DATABASE_URL. Tagged-template queries become named prepared statements (the
// driver's default, prepare: true), parsed once per connection and then only bound.
import postgres from "postgres";
import { serveSteps } from "./steps.mjs";

const sql = postgres(process.env.DATABASE_URL, { max: 1, onnotice: () => {} });
const table = (name) => sql(name);

await serveSteps({
  // A parameterized read: SELECT id, name, qty FROM <table> WHERE id = $1 <marker>.
  async get({ table: name, id, marker }) {
    const rows = await sql`SELECT id, name, qty FROM ${table(name)} WHERE id = ${id} ${sql.unsafe(marker)}`;
    return rows.map((r) => ({ ...r }));
  },
  // Several rows: SELECT … WHERE qty >= $1 ORDER BY id <marker>.
  async list({ table: name, min, marker }) {
    const rows = await sql`SELECT id, name, qty FROM ${table(name)} WHERE qty >= ${min} ORDER BY id ${sql.unsafe(marker)}`;
    return rows.map((r) => ({ ...r }));
  },
  // UPDATE … SET qty = $1 WHERE id = $2; returns the count of rows updated.
  async update({ table: name, id, qty }) {
    const res = await sql`UPDATE ${table(name)} SET qty = ${qty} WHERE id = ${id}`;
    return res.count;
  },
  // Several queries pipelined on the one connection before their results are read.
  async pipelined({ table: name, ids, marker }) {
    const results = await Promise.all(
      ids.map((id) => sql`SELECT id, name, qty FROM ${table(name)} WHERE id = ${id} ${sql.unsafe(marker)}`),
    );
    return results.map((rows) => rows.map((r) => ({ ...r })));
  },
  async close() {
    await sql.end({ timeout: 5 });
  },
});
