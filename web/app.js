// The demo: sample a grid, interpolate between two samples with a slider, and move the most
// informative latent dimensions of sample 1 with sliders (by the KL in the folder's eval.json,
// else the first ones), redrawing as they move. A conditional model gets a
// class picker: every picture is drawn in the chosen class.
// A VQ-VAE folder gets its own page: samples drawn from the autoregressive prior with the
// seed, class ("any" draws it from the training frequencies) and temperature picked.
import {
  classesOf, decode, decodeCodes, drawGrid, latentOrder, loadEvaluation, loadModel, priorSample, sampleCodes,
  samplePrior, slerp,
} from "./vae.js";

const params = new URLSearchParams(location.search);
const folder = params.get("model") || "/models/fashion-mnist/";
const status = document.getElementById("status");
const DIMS = 4;

async function main() {
  const model = await loadModel(folder);
  if (model.manifest.model.kind === "vqvae") return mainVQ(model);
  const image = model.manifest.image;
  const d = model.manifest.model.latent_dim;
  let latents = [];
  const edited = new Float32Array(d);
  const sliders = [];
  const classes = classesOf(model.manifest);
  const picker = document.getElementById("label");
  if (classes) {
    classes.forEach((name, i) => picker.append(new Option(`${i}: ${name}`, String(i))));
    document.getElementById("classes").hidden = false;
  }
  const label = () => (classes ? Number(picker.value) : null);

  async function drawSamples() {
    latents = await samplePrior(model, 64, Number(document.getElementById("seed").value));
    drawGrid(document.getElementById("grid"), await decode(model, latents, label()), 64, image, 8, 2);
    edited.set(latents[0]);
    sliders.forEach((slider, i) => { slider.value = edited[shown[i]]; }); // start from sample 1's latent
    await Promise.all([drawInterpolation(), drawEdited()]);
  }
  async function drawInterpolation() {
    const t = Number(document.getElementById("t").value);
    const frames = [0, 0.25, 0.5, 0.75, 1].map((s) => Float32Array.from(slerp(latents[0], latents[1], s)));
    frames.splice(2, 1, Float32Array.from(slerp(latents[0], latents[1], t)));
    drawGrid(document.getElementById("interp"), await decode(model, frames, label()), 5, image, 5, 3);
  }
  async function drawEdited() {
    drawGrid(document.getElementById("edit"), await decode(model, [edited], label()), 1, image, 1, 5);
  }
  const dims = document.getElementById("dims");
  const shown = latentOrder(await loadEvaluation(model), d).slice(0, DIMS);
  window.vaeportSliderDims = shown; // test hook: which dimensions the sliders move
  for (const i of shown) {
    const row = document.createElement("label");
    row.textContent = `z[${i}] `;
    const slider = Object.assign(document.createElement("input"), { type: "range", min: -3, max: 3, step: 0.05, value: 0 });
    slider.addEventListener("input", () => { edited[i] = Number(slider.value); drawEdited(); });
    row.append(slider);
    dims.append(row);
    sliders.push(slider);
  }
  document.getElementById("seed").addEventListener("change", drawSamples);
  picker.addEventListener("change", drawSamples);
  document.getElementById("t").addEventListener("input", drawInterpolation);
  await drawSamples();

  // Test hook: decode given latents (with the picked class, or `labels` when given) onto the hidden
  // probe canvas and return its RGBA pixels.
  window.vaeportProbe = async (zs, labels = null) => {
    const probe = document.getElementById("probe");
    const pixels = await decode(model, zs.map((z) => Float32Array.from(z)), labels ?? label());
    drawGrid(probe, pixels, zs.length, image, zs.length, 1);
    return Array.from(probe.getContext("2d").getImageData(0, 0, probe.width, probe.height).data);
  };
  status.textContent = `${model.manifest.name}: ${image.channels}x${image.height}x${image.width}, ` +
    `latent ${d}, prior ${model.manifest.model.prior ?? "normal"}${classes ? `, ${classes.length} classes` : ""}, onnxruntime-web ${ort.env.versions?.web ?? ""}`;
  // Test hook: latents the page draws from given noise through the model's prior.
  window.vaeportPrior = async (noise) => (await priorSample(model, noise.map((e) => Float32Array.from(e))))
    .map((z) => Array.from(z));
  // Test hook: pick a class as a user would (the grid, interpolation and edit redraw in it).
  window.vaeportPick = async (index) => { picker.value = String(index); await drawSamples(); };
  window.vaeportReady = true;
}

async function mainVQ(model) {
  const { manifest } = model;
  const image = manifest.image;
  const classes = classesOf(manifest);
  const picker = document.getElementById("label");
  if (classes) {
    picker.append(new Option("any (training frequencies)", ""));
    classes.forEach((name, i) => picker.append(new Option(`${i}: ${name}`, String(i))));
    document.getElementById("classes").hidden = false;
  }
  document.getElementById("samples-title").textContent = "Samples from the autoregressive prior";
  document.getElementById("temperature-row").hidden = false;
  document.getElementById("continuous").hidden = true;
  document.getElementById("discrete").hidden = false;
  const label = () => (classes && picker.value !== "" ? Number(picker.value) : null);
  const temperature = () => Number(document.getElementById("temperature").value);

  async function draw(n, seed, chosen, temp) {
    const { codes, labels } = await sampleCodes(model, n, seed, chosen, temp);
    return { codes, labels, pixels: await decodeCodes(model, codes, n) };
  }
  async function drawSamples() {
    const { codes, pixels } = await draw(64, Number(document.getElementById("seed").value), label(), temperature());
    drawGrid(document.getElementById("grid"), pixels, 64, image, 8, 2);
    drawCodeMap(document.getElementById("codes-of-first"), codes, manifest.model);
  }
  for (const id of ["seed", "temperature"]) document.getElementById(id).addEventListener("change", drawSamples);
  picker.addEventListener("change", drawSamples);
  await drawSamples();
  status.textContent = `${manifest.name}: ${image.channels}x${image.height}x${image.width}, VQ-VAE, ` +
    `${manifest.model.code_grid.join(" x ")} codes of ${manifest.model.codebook_size}` +
    `${classes ? `, ${classes.length} classes` : ""}, onnxruntime-web ${ort.env.versions?.web ?? ""}`;
  // Test hook: n samples of the seeded stream as the page draws them: their codes, classes and RGBA pixels.
  window.vaeportCodes = async (n, seed, chosen = null, temp = 1) => {
    const { codes, labels, pixels } = await draw(n, seed, chosen, temp);
    const probe = document.getElementById("probe");
    drawGrid(probe, pixels, n, image, n, 1);
    const rgba = Array.from(probe.getContext("2d").getImageData(0, 0, probe.width, probe.height).data);
    return { codes: Array.from(codes), labels: labels && Array.from(labels), rgba };
  };
  window.vaeportPick = async (index) => { picker.value = index === null ? "" : String(index); await drawSamples(); };
  window.vaeportReady = true;
}

function drawCodeMap(canvas, codes, { code_grid: [h, w], codebook_size: k }) {
  // the first sample's code grid, each index as a grey level (a picture of what the prior drew)
  const scale = 12;
  canvas.width = w * scale;
  canvas.height = h * scale;
  const ctx = canvas.getContext("2d");
  for (let i = 0; i < h * w; i++) {
    const level = Math.round((codes[i] / (k - 1)) * 255);
    ctx.fillStyle = `rgb(${level},${level},${level})`;
    ctx.fillRect((i % w) * scale, Math.floor(i / w) * scale, scale, scale);
  }
}

main().catch((err) => { status.textContent = `error: ${err.message}`; window.vaeportError = err.message; });
