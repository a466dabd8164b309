// A line protocol that lets a pytest test drive a Node program step by step, so the
// test can look at the origin's statement log between two steps: the test writes one
// JSON object per line on stdin, {"op": name, "args": {...}}; the program answers one
// line on stdout, {"ok": true, "result": ...} or {"ok": false, "error": "..."}. The
// program ends when stdin closes (after running `close`, if it has one).
import { createInterface } from "node:readline";

// JSON cannot carry BigInt (int8 and count(*) in some drivers): send it as a string.
const replacer = (_key, value) => (typeof value === "bigint" ? value.toString() : value);

export async function serveSteps(handlers) {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const reply = (obj) => process.stdout.write(JSON.stringify(obj, replacer) + "\n");
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { op, args } = JSON.parse(line);
    const handler = handlers[op];
    try {
      if (!handler) throw new Error(`unknown step ${op}`);
      reply({ ok: true, result: (await handler(args || {})) ?? null });
    } catch (err) {
      reply({ ok: false, error: `${err.code || err.name || "Error"}: ${err.message}` });
    }
  }
  if (handlers.close) await handlers.close();
}
