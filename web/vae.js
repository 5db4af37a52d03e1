// Shared by the demo and the parity page: load a vaeport model folder with onnxruntime-web,
// draw decoded images, and a seeded N(0, 1) generator (mulberry32 + Box-Muller). A VQ-VAE is
// sampled position by position through its prior_step graph with numpy's own uniforms
// (numpy_random.js), so a seed gives the codes and pixels the Python runtime gives.
/* global ort */
import { uniformRows } from "./numpy_random.js";

export const WASM_PATHS = "/web/node_modules/onnxruntime-web/dist/";
const SUPPORTED_VERSIONS = [1, 2, 3, 4];
// What the demo runs: the graph roles it opens for each model family (runtime/families.py), and
// the priors it samples. A folder of another family or prior is refused with a visible line,
// never drawn from N(0, I) behind its back.
export const DEMO_ROLES = { vae: ["decoder"], ae: ["decoder"], vqvae: ["decoder", "prior_step"] };
export const DEMO_PRIORS = { normal: [], flow: ["prior_sample"] }; // prior -> the graphs it samples through
const ACTIVE_UNIT_THRESHOLD = 0.01; // runtime/evaluate.py: a dimension whose posterior means vary less is inactive

export function classesOf(manifest) {
  // a conditional model's class names (format_version 2), or null
  return manifest.format_version >= 2 && Array.isArray(manifest.classes) ? manifest.classes : null;
}

export function labelTensor(labels) {
  // class indices -> the graphs' int64 "y" input (onnxruntime-web takes int64 as BigInt64Array)
  return new ort.Tensor("int64", BigInt64Array.from(labels, (v) => BigInt(v)), [labels.length]);
}

export function tensorOf(spec) {
  // {shape, dtype, data} (what export/feeds.py writes) -> an ort.Tensor
  if (spec.dtype === "int64") return new ort.Tensor("int64", BigInt64Array.from(spec.data, (v) => BigInt(v)), spec.shape);
  return new ort.Tensor("float32", Float32Array.from(spec.data), spec.shape);
}

export async function loadManifest(folder) {
  ort.env.wasm.wasmPaths = WASM_PATHS; // absolute URL path: the .wasm files are served beside ort.min.js
  ort.env.wasm.numThreads = 1; // no cross-origin isolation needed
  const base = folder.endsWith("/") ? folder : folder + "/";
  const manifest = await (await fetch(base + "vae.json")).json();
  if (manifest.format !== "vaeport-model" || !SUPPORTED_VERSIONS.includes(manifest.format_version)) {
    throw new Error(`expected a vaeport-model manifest of format_version ${SUPPORTED_VERSIONS.join(" or ")}, ` +
      `got ${manifest.format} ${manifest.format_version}`);
  }
  return { base, manifest };
}

export async function loadEvaluation({ base }) {
  // the model folder's eval.json (vae-eval), or null where it has none
  try {
    const response = await fetch(base + "eval.json");
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

export function latentOrder(evaluation, d) {
  // The active latent dimensions, most informative first (as vae-plot --traverse orders them): by
  // eval.json's KL per dimension, else (a learned prior, an autoencoder) by the variance of the
  // posterior means; 0..d-1 when the folder has no evaluation.
  const result = evaluation?.onnx ?? evaluation?.torch;
  const all = [...Array(d).keys()];
  const activity = result?.mean_activity;
  if (!Array.isArray(activity) || activity.length !== d) return all;
  const key = Array.isArray(result.kl_per_dim) && result.kl_per_dim.length === d ? result.kl_per_dim : activity;
  const active = all.filter((i) => activity[i] > ACTIVE_UNIT_THRESHOLD).sort((a, b) => key[b] - key[a] || a - b);
  return active.length ? active : all;
}

export async function openGraph({ base, manifest }, role) {
  // the fp32 graph of one role, checked against the manifest's sha256 before it is used
  const file = manifest.graphs.fp32[role];
  if (!file) throw new Error(`expected a ${role} graph in ${base}vae.json, got roles ${Object.keys(manifest.graphs.fp32)}`);
  const bytes = new Uint8Array(await (await fetch(base + file)).arrayBuffer());
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  if (digest !== manifest.files[file].sha256) {
    throw new Error(`${file}: expected sha256 ${manifest.files[file].sha256}, got ${digest}`);
  }
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
}

export function checkRunnable(manifest) {
  // the demo's one visible refusal for a folder it cannot run
  const kind = manifest.model.kind;
  const prior = manifest.model.prior ?? "normal";
  if (!(kind in DEMO_ROLES)) {
    throw new Error(`this demo cannot run model.kind ${kind} (it runs ${Object.keys(DEMO_ROLES).join(", ")})`);
  }
  if (!(prior in DEMO_PRIORS)) {
    throw new Error(`this demo cannot sample the ${prior} prior (it samples ${Object.keys(DEMO_PRIORS).join(", ")})`);
  }
}

export async function loadModel(folder) {
  // {manifest, sessions: {role: session}} with a session for each role the demo runs
  const loaded = await loadManifest(folder);
  checkRunnable(loaded.manifest);
  const sessions = {};
  const prior = loaded.manifest.model.prior ?? "normal";
  for (const role of [...DEMO_ROLES[loaded.manifest.model.kind], ...DEMO_PRIORS[prior]]) {
    sessions[role] = await openGraph(loaded, role);
  }
  return { base: loaded.base, manifest: loaded.manifest, sessions };
}

export async function priorSample(model, noise) {
  // latents from noise (array of Float32Array(D)) through the model's prior: N(0, I) is the noise
  // itself, a learned prior runs its prior_sample graph
  const session = model.sessions.prior_sample;
  if (!session) return noise;
  const d = model.manifest.model.latent_dim;
  const flat = new Float32Array(noise.length * d);
  noise.forEach((eps, i) => flat.set(eps, i * d));
  const run = (model.queue ?? Promise.resolve()).then(() => session.run({ eps: new ort.Tensor("float32", flat, [noise.length, d]) }));
  model.queue = run.catch(() => {});
  const z = (await run)[session.outputNames[0]].data;
  return noise.map((_, i) => z.slice(i * d, (i + 1) * d));
}

export async function samplePrior(model, n, seed) {
  // n latents from the model's prior, from the page's seeded N(0, 1) generator
  return priorSample(model, sampleLatents(n, model.manifest.model.latent_dim, seed));
}

export function decode(model, latents, labels = null) {
  // onnxruntime-web runs one inference per session at a time ("Session already started"):
  // queue the calls so sliders moving quickly never overlap. `labels`: a conditional model's
  // class index per latent (or one index for all).
  const run = (model.queue ?? Promise.resolve()).then(() => decodeNow(model, latents, labels));
  model.queue = run.catch(() => {});
  return run;
}

async function decodeNow(model, latents, labels) {
  // latents: array of Float32Array(D) -> Float32Array of N*C*H*W pixels in [0, 1]
  const d = model.manifest.model.latent_dim;
  const flat = new Float32Array(latents.length * d);
  latents.forEach((z, i) => flat.set(z, i * d));
  const feeds = { z: new ort.Tensor("float32", flat, [latents.length, d]) };
  const classes = classesOf(model.manifest);
  if (classes) {
    if (labels === null) throw new Error(`this model is conditional: expected a label (${classes.join(", ")})`);
    const each = typeof labels === "number" ? latents.map(() => labels) : Array.from(labels);
    feeds.y = labelTensor(each);
  }
  const session = model.sessions.decoder;
  const out = await session.run(feeds);
  return out[session.outputNames[0]].data;
}

// --- VQ-VAE: runtime/vq_sampling.py and runtime/vqvae.py, line for line ---

export function drawCode(logits, offset, k, uniform, temperature) {
  // the first code whose cumulative probability (float64 softmax of logits / temperature)
  // exceeds the uniform; temperature 0: the most probable code (the first of equals)
  let best = 0;
  for (let j = 1; j < k; j++) if (logits[offset + j] > logits[offset + best]) best = j;
  if (temperature === 0) return best;
  const top = logits[offset + best] / temperature;
  const probs = new Float64Array(k);
  let total = 0;
  for (let j = 0; j < k; j++) {
    probs[j] = Math.exp(logits[offset + j] / temperature - top);
    total += probs[j];
  }
  let cumulative = 0;
  let code = 0;
  for (let j = 0; j < k; j++) {
    cumulative += probs[j] / total;
    if (cumulative <= uniform) code = j + 1;
  }
  return Math.min(code, k - 1);
}

export function drawClasses(uniforms, counts) {
  // class indices from the training frequencies by inverse CDF (column 0 of each row's uniforms)
  const cumulative = [];
  counts.reduce((sum, c, i) => (cumulative[i] = sum + c), 0);
  const total = cumulative[cumulative.length - 1];
  return uniforms.map((row) => {
    let c = 0;
    for (const edge of cumulative) if (edge / total <= row[0]) c++;
    return Math.min(c, counts.length - 1);
  });
}

export function classWeights(manifest) {
  // training images per class, uniform when the folder does not record them
  const counts = manifest.class_counts;
  const classes = classesOf(manifest);
  return Array.isArray(counts) && counts.some((c) => c > 0) ? counts : classes.map(() => 1);
}

export function sampleCodes(model, n, seed, label = null, temperature = 1) {
  // {codes: Int32Array(n*h*w), labels}: samples 0..n-1 of the seeded stream, as
  // VQVAE.sample_latent(n, seed, temperature, label=label) draws them (label null: a conditional
  // prior draws each image's class from the training frequencies)
  const run = (model.queue ?? Promise.resolve()).then(() => sampleCodesNow(model, n, seed, label, temperature));
  model.queue = run.catch(() => {});
  return run;
}

async function sampleCodesNow(model, n, seed, label, temperature) {
  const { manifest } = model;
  const [gh, gw] = manifest.model.code_grid;
  const k = manifest.model.codebook_size;
  const [layers, heads, length, headDim] = manifest.model.prior_cache;
  const uniforms = uniformRows(seed, 0, n, length + 1); // column 0: the class, when drawn
  const classes = classesOf(manifest);
  let labels = null;
  if (classes) labels = label === null ? drawClasses(uniforms, classWeights(manifest)) : uniforms.map(() => label);
  const session = model.sessions.prior_step;
  const past = Array.from({ length: 2 * layers }, () => new Float32Array(n * heads * length * headDim));
  const pastShape = [n, heads, length, headDim];
  const codes = new Int32Array(n * gh * gw);
  let token = Array(n).fill(k); // the start token
  for (let t = 0; t < length; t++) {
    const feeds = { token: labelTensor(token), position: labelTensor([t]) };
    past.forEach((buffer, i) => {
      feeds[`past_${i % 2 ? "v" : "k"}_${Math.floor(i / 2)}`] = new ort.Tensor("float32", buffer, pastShape);
    });
    if (labels) feeds.y = labelTensor(labels);
    const out = await session.run(feeds);
    past.forEach((buffer, i) => {
      const value = out[`${i % 2 ? "v" : "k"}_${Math.floor(i / 2)}`].data; // [n, heads, headDim]
      for (let row = 0; row < n * heads; row++) {
        buffer.set(value.subarray(row * headDim, (row + 1) * headDim), (row * length + t) * headDim);
      }
    });
    const logits = out.logits.data;
    token = token.map((_, i) => drawCode(logits, i * k, k, uniforms[i][t + 1], temperature));
    token.forEach((code, i) => { codes[i * length + t] = code; });
  }
  return { codes, labels };
}

export function decodeCodes(model, codes, n) {
  // code grids (n*h*w integers) -> Float32Array of n*C*H*W pixels in [0, 1]
  const [gh, gw] = model.manifest.model.code_grid;
  const run = (model.queue ?? Promise.resolve()).then(async () => {
    const session = model.sessions.decoder;
    const out = await session.run({ codes: new ort.Tensor("int64", BigInt64Array.from(codes, (v) => BigInt(v)), [n, gh, gw]) });
    return out[session.outputNames[0]].data;
  });
  model.queue = run.catch(() => {});
  return run;
}

export function toRGBA(pixels, offset, image) {
  // one [C,H,W] image in [0, 1] -> RGBA bytes, rounding like Python's numpy.rint(x * 255)
  const { channels: c, height: h, width: w } = image;
  const rgba = new Uint8ClampedArray(h * w * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      for (let k = 0; k < 3; k++) {
        const ch = c === 1 ? 0 : k;
        rgba[o + k] = Math.round(pixels[offset + ch * h * w + y * w + x] * 255);
      }
      rgba[o + 3] = 255;
    }
  }
  return rgba;
}

export function drawGrid(canvas, pixels, count, image, columns, scale = 3) {
  const { height: h, width: w } = image;
  const rows = Math.ceil(count / columns);
  canvas.width = columns * w * scale;
  canvas.height = rows * h * scale;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  const tile = document.createElement("canvas");
  tile.width = w;
  tile.height = h;
  const tctx = tile.getContext("2d");
  for (let i = 0; i < count; i++) {
    tctx.putImageData(new ImageData(toRGBA(pixels, i * image.channels * h * w, image), w, h), 0, 0);
    ctx.drawImage(tile, (i % columns) * w * scale, Math.floor(i / columns) * h * scale, w * scale, h * scale);
  }
}

export function normalGenerator(seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

export function sampleLatents(n, d, seed) {
  const normal = normalGenerator(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, normal));
}

export function slerp(a, b, t) {
  const dot = a.reduce((s, v, i) => s + v * b[i], 0);
  const norm = Math.hypot(...a) * Math.hypot(...b);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norm + 1e-12))));
  if (Math.sin(omega) < 1e-6) return a.map((v, i) => (1 - t) * v + t * b[i]);
  const s = Math.sin(omega);
  return a.map((v, i) => (Math.sin((1 - t) * omega) * v + Math.sin(t * omega) * b[i]) / s);
}
