// node web/tools/node_parity.mjs MODEL_DIR INPUTS.json -> JSON {encoder: [flat outputs], decoder: [...]}
// Runs a model folder's fp32 graphs with onnxruntime-node on the inputs the parity matrix wrote.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";

const [folder, inputsPath] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(folder, "vae.json"), "utf8"));
const inputs = JSON.parse(readFileSync(inputsPath, "utf8"));
const result = { version: ort.env.versions?.node ?? "" };
for (const part of ["encoder", "decoder"]) {
  const file = manifest.graphs.fp32[part];
  const bytes = readFileSync(join(folder, file));
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== manifest.files[file].sha256) {
    throw new Error(`${file}: expected sha256 ${manifest.files[file].sha256}, got ${digest}`);
  }
  const session = await ort.InferenceSession.create(bytes);
  const feed = inputs[part];
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", Float32Array.from(feed.data), feed.shape) };
  if (feed.labels) {  // a conditional model's "y": int64 class indices
    feeds.y = new ort.Tensor("int64", BigInt64Array.from(feed.labels, (v) => BigInt(v)), [feed.labels.length]);
  }
  const out = await session.run(feeds);
  result[part] = session.outputNames.map((name) => Array.from(out[name].data));
}
process.stdout.write(JSON.stringify(result));
