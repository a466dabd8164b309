// node-postgres (`pg`) through wirecache, driven step by step by
// tests/postgres_plugin/test_node_drivers.py (see steps.mjs). Connects to
// DATABASE_URL. Every query uses the extended protocol: `values` makes pg send
// Parse/Bind/Describe/Execute/Sync with an unnamed statement, and `name` a named
// prepared statement that pg parses once per connection and then only binds.
import pg from "pg";
import { serveSteps } from "./steps.mjs";

const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();

await serveSteps({
  // {text, values, name?, rowMode?}: one query; returns its rows and command tag.
  async query({ text, values = [], name, rowMode = "array" }) {
    const config = { text, values, rowMode };
    if (name) config.name = name;
    const res = await client.query(config);
    return { rows: res.rows, command: res.command, rowCount: res.rowCount };
  },
  async close() {
    await client.end();
  },
});
