// node web/tools/node_parity.mjs MODEL_DIR INPUTS.json -> JSON {role: [flat outputs], ...}
// Runs a model folder's fp32 graph of each role in INPUTS.json with onnxruntime-node on the inputs
// export/feeds.py wrote ({role: {input name: {shape, dtype, data}}}).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";

const [folder, inputsPath] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(folder, "vae.json"), "utf8"));
const inputs = JSON.parse(readFileSync(inputsPath, "utf8"));
const result = { version: ort.env.versions?.node ?? "" };
const tensorOf = (spec) => (spec.dtype === "int64"
  ? new ort.Tensor("int64", BigInt64Array.from(spec.data, (v) => BigInt(v)), spec.shape)
  : new ort.Tensor("float32", Float32Array.from(spec.data), spec.shape));
for (const [role, spec] of Object.entries(inputs)) {
  const file = manifest.graphs.fp32[role];
  const bytes = readFileSync(join(folder, file));
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== manifest.files[file].sha256) {
    throw new Error(`${file}: expected sha256 ${manifest.files[file].sha256}, got ${digest}`);
  }
  const session = await ort.InferenceSession.create(bytes);
  const feeds = Object.fromEntries(Object.entries(spec).map(([name, value]) => [name, tensorOf(value)]));
  const out = await session.run(feeds);
  result[role] = session.outputNames.map((name) => Array.from(out[name].data, Number)); // int64 (codes) as numbers
}
process.stdout.write(JSON.stringify(result));
