// The demo: sample a grid, interpolate between two samples with a slider, and move the most
// informative latent dimensions of sample 1 with sliders (by the KL in the folder's eval.json,
// else the first ones), redrawing as they move. A conditional model gets a
// class picker: every picture is drawn in the chosen class.
import { classesOf, decode, drawGrid, latentOrder, loadEvaluation, loadModel, priorSample, samplePrior, slerp } from "./vae.js";

const params = new URLSearchParams(location.search);
const folder = params.get("model") || "/models/fashion-mnist/";
const status = document.getElementById("status");
const DIMS = 4;

async function main() {
  const model = await loadModel(folder);
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

main().catch((err) => { status.textContent = `error: ${err.message}`; window.vaeportError = err.message; });
