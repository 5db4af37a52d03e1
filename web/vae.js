// Shared by the demo and the parity page: load a vaeport model folder with onnxruntime-web,
// draw decoded images, and a seeded N(0, 1) generator (mulberry32 + Box-Muller).
/* global ort */

export const WASM_PATHS = "/web/node_modules/onnxruntime-web/dist/";
const SUPPORTED_VERSIONS = [1, 2];

export function classesOf(manifest) {
  // a conditional model's class names (format_version 2), or null
  return manifest.format_version >= 2 && Array.isArray(manifest.classes) ? manifest.classes : null;
}

export function labelTensor(labels) {
  // class indices -> the graphs' int64 "y" input (onnxruntime-web takes int64 as BigInt64Array)
  return new ort.Tensor("int64", BigInt64Array.from(labels, (v) => BigInt(v)), [labels.length]);
}

export async function loadModel(folder, part = "decoder") {
  ort.env.wasm.wasmPaths = WASM_PATHS; // absolute URL path: the .wasm files are served beside ort.min.js
  ort.env.wasm.numThreads = 1; // no cross-origin isolation needed
  const base = folder.endsWith("/") ? folder : folder + "/";
  const manifest = await (await fetch(base + "vae.json")).json();
  if (manifest.format !== "vaeport-model" || !SUPPORTED_VERSIONS.includes(manifest.format_version)) {
    throw new Error(`expected a vaeport-model manifest of format_version ${SUPPORTED_VERSIONS.join(" or ")}, ` +
      `got ${manifest.format} ${manifest.format_version}`);
  }
  const file = manifest.graphs.fp32[part];
  const bytes = new Uint8Array(await (await fetch(base + file)).arrayBuffer());
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  if (digest !== manifest.files[file].sha256) {
    throw new Error(`${file}: expected sha256 ${manifest.files[file].sha256}, got ${digest}`);
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  return { manifest, session };
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
  const out = await model.session.run(feeds);
  return out[model.session.outputNames[0]].data;
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
