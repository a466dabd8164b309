// Run statements through a Node MySQL driver and print the rows as JSON.
// Usage: node mysql_query.js '{"driver": "mysql2"|"mariadb", "config": {...},
//                              "steps": [["query"|"execute", sql, params]]}'
// "query" is the text protocol (COM_QUERY), "execute" the binary protocol
// (COM_STMT_PREPARE/EXECUTE; the mariadb connector may pipeline them, with the
// direct-execute statement id 0xFFFFFFFF).
async function connect(driver, config) {
  if (driver === "mysql2") {
    const mysql = require("mysql2/promise");
    return mysql.createConnection(config);
  }
  if (driver === "mariadb") {
    const mariadb = require("mariadb");
    return mariadb.createConnection(config);
  }
  throw new Error(`unknown driver ${driver}`);
}

function plain(rows) {
  // Writes return an OK object, reads an array of rows (as arrays).
  return Array.isArray(rows) ? rows.map((r) => Array.from(r)) : [];
}

async function main() {
  const { driver, config, steps } = JSON.parse(process.argv[2]);
  const conn = await connect(driver, config);
  const results = [];
  try {
    for (const [kind, sql, params] of steps) {
      const options = { sql, rowsAsArray: true };
      const res = kind === "execute"
        ? await conn.execute(options, params || [])
        : await conn.query(options, params || []);
      // mysql2 answers [rows, fields]; mariadb answers rows (with a meta property).
      results.push(plain(driver === "mysql2" ? res[0] : res));
    }
  } finally {
    await conn.end();
  }
  console.log(JSON.stringify({ results }, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
}

main().catch((err) => {
  console.error(`ERROR: ${err.code || ""} ${err.message}`);
  process.exit(1);
});
