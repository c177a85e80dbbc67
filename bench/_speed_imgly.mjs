// One IMG.LY background-removal-node process for bench/speed.py (see _speed_worker.py for
// the protocol): requests on stdin, one "@@speed {json}" answer line each.
//   IMGLY_DIR=<folder holding node_modules/@imgly/background-removal-node> node _speed_imgly.mjs
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import readline from "node:readline";

const MARKER = "@@speed ";
const MIME = { png: "image/png", webp: "image/webp" };
const dir = process.env.IMGLY_DIR;
const require = createRequire(join(dir, "package.json"));
const { removeBackground } = require("@imgly/background-removal-node");
const pkg = join(dir, "node_modules", "@imgly", "background-removal-node", "package.json");
const version = JSON.parse(readFileSync(pkg, "utf8")).version;

// The package finds its weights relative to the working folder unless told where they are.
const publicPath = `file://${join(dir, "node_modules", "@imgly", "background-removal-node", "dist")}/`;
const say = (obj) => process.stdout.write(MARKER + JSON.stringify(obj) + "\n");
say({ ready: true, describe: `@imgly/background-removal-node ${version}, model medium, Node ${process.version}` });

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  const t0 = process.hrtime.bigint();
  const data = readFileSync(req.input);
  const blob = await removeBackground(new Blob([data], { type: "image/jpeg" }), {
    model: "medium",
    publicPath,
    output: { format: MIME[req.format] },
  });
  const out = Buffer.from(await blob.arrayBuffer());
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (req.save) writeFileSync(req.save, out);
  say({ seconds, stages: {}, bytes: out.length });
}
