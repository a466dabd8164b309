// Run queries through node-postgres and print the results as JSON.
// Usage: node query.js '{"config": {...pg.Client config...}, "queries": ["SELECT 1", ...]}'
const { Client } = require("pg");

async function main() {
  const { config, queries } = JSON.parse(process.argv[2]);
  const client = new Client(config);
  await client.connect();
  try {
    const results = [];
    for (const text of queries) {
      const res = await client.query({ text, rowMode: "array" });
      results.push(res.rows);
    }
    const stream = client.connection.stream;
    console.log(JSON.stringify({ encrypted: Boolean(stream.encrypted), results }));
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  console.error(`${err.severity || "ERROR"}: ${err.message}`);
  process.exit(1);
});
