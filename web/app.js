// The demo: sample a grid, interpolate between two samples with a slider, and move the first
// latent dimensions of sample 1 with sliders, redrawing as they move.
import { decode, drawGrid, loadModel, sampleLatents, slerp } from "./vae.js";

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

  async function drawSamples() {
    latents = sampleLatents(64, d, Number(document.getElementById("seed").value));
    drawGrid(document.getElementById("grid"), await decode(model, latents), 64, image, 8, 2);
    edited.set(latents[0]);
    sliders.forEach((slider, i) => { slider.value = edited[i]; }); // start from sample 1's latent
    await Promise.all([drawInterpolation(), drawEdited()]);
  }
  async function drawInterpolation() {
    const t = Number(document.getElementById("t").value);
    const frames = [0, 0.25, 0.5, 0.75, 1].map((s) => Float32Array.from(slerp(latents[0], latents[1], s)));
    frames.splice(2, 1, Float32Array.from(slerp(latents[0], latents[1], t)));
    drawGrid(document.getElementById("interp"), await decode(model, frames), 5, image, 5, 3);
  }
  async function drawEdited() {
    drawGrid(document.getElementById("edit"), await decode(model, [edited]), 1, image, 1, 5);
  }
  const dims = document.getElementById("dims");
  for (let i = 0; i < Math.min(DIMS, d); i++) {
    const label = document.createElement("label");
    label.textContent = `z[${i}] `;
    const slider = Object.assign(document.createElement("input"), { type: "range", min: -3, max: 3, step: 0.05, value: 0 });
    slider.addEventListener("input", () => { edited[i] = Number(slider.value); drawEdited(); });
    label.append(slider);
    dims.append(label);
    sliders.push(slider);
  }
  document.getElementById("seed").addEventListener("change", drawSamples);
  document.getElementById("t").addEventListener("input", drawInterpolation);
  await drawSamples();

  // Test hook: decode given latents onto the hidden probe canvas and return its RGBA pixels.
  window.vaeportProbe = async (zs) => {
    const probe = document.getElementById("probe");
    drawGrid(probe, await decode(model, zs.map((z) => Float32Array.from(z))), zs.length, image, zs.length, 1);
    return Array.from(probe.getContext("2d").getImageData(0, 0, probe.width, probe.height).data);
  };
  status.textContent = `${model.manifest.name}: ${image.channels}x${image.height}x${image.width}, ` +
    `latent ${d}, onnxruntime-web ${ort.env.versions?.web ?? ""}`;
  window.vaeportReady = true;
}

main().catch((err) => { status.textContent = `error: ${err.message}`; window.vaeportError = err.message; });
