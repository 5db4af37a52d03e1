"""Run ONNX graphs in one runtime, inside that runtime's own venv (numpy + the runtime only; no
vaeport, no onnx): `python compat_child.py RUNTIME JOB.json OUT.npz`.

JOB.json: {"rows": [{"id", "graph" (path), "inputs": {name: npy path}, "outputs": [names]}]}.
Writes each row's outputs to OUT.npz as "<id>/<index>", and prints one JSON line: the runtime's
version and, per row, "ok" or the first line of the error.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def onnxruntime_runner():
    import onnxruntime as ort

    def run(path, feeds, names):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.run(names, feeds)

    return ort.__version__, run


def openvino_runner():
    import openvino as ov

    core = ov.Core()

    def run(path, feeds, names):
        # OpenVINO's CPU plugin computes in bf16/fp16 on CPUs that have it unless told otherwise
        compiled = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        result = compiled(feeds)
        return [result[compiled.output(index)] for index in range(len(names))]  # in the graph's order

    return ov.__version__, run


def opencv_runner():
    import cv2

    def run(path, feeds, names):
        net = cv2.dnn.readNetFromONNX(path)
        for name, array in feeds.items():
            net.setInput(array, name)
        outs = net.forward(names)
        return list(outs)

    return cv2.__version__, run


def tract_runner():
    import tract

    def run(path, feeds, names):
        model = tract.onnx().load(path).into_model()  # the batch axis stays the symbol N
        return [value.to_numpy() for value in model.into_runnable().run(list(feeds.values()))]

    import importlib.metadata

    return importlib.metadata.version("tract"), run


def stub_torchvision() -> None:
    """onnx2torch imports torchvision for its NMS and RoiAlign converters only (graphs here have
    neither). torchvision beside the pinned CPU torch would pull a multi-GB CUDA torch from PyPI,
    so the venv has none: a stub that fails loudly if those converters are ever used."""
    import importlib.util
    import types

    if importlib.util.find_spec("torchvision") is not None:
        return

    def missing(*args, **kwargs):
        raise NotImplementedError("torchvision is not installed in this venv")

    vision, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.nms = ops.box_convert = ops.roi_align = missing
    vision.ops = ops
    sys.modules.update({"torchvision": vision, "torchvision.ops": ops})


def onnx2torch_runner():
    import importlib.metadata

    import torch

    stub_torchvision()
    from onnx2torch import convert

    def run(path, feeds, names):
        module = convert(path).eval()
        with torch.no_grad():
            out = module(*(torch.from_numpy(a) for a in feeds.values()))
        flat, stack = [], [out]
        while stack:  # outputs may come back as nested tuples
            item = stack.pop(0)
            if isinstance(item, (tuple, list)):
                stack[:0] = list(item)
            else:
                flat.append(item.numpy())
        return flat

    return f"onnx2torch {importlib.metadata.version('onnx2torch')}, torch {torch.__version__}", run


def vaeport_runner():
    """vaeport's own runtime (installed from this checkout's wheel), on the rows' model folders."""
    import onnxruntime

    from vaeport.runtime import VAE

    def run(path, feeds, names, row):
        vae = VAE.load(row["folder"], device="cpu", variant=row["variant"])
        label = feeds.get("y")  # a conditional model's class indices
        if vae.kind == "vqvae":  # codes in and out; the step graph through the session the sampler runs
            vq_calls = {
                "encoder": lambda: [vae.encode(feeds["x"])],
                "decoder": lambda: [vae.decode(feeds["codes"])],
                "prior": lambda: [vae.prior_logits(feeds["codes"], label=label)],
                "prior_step": lambda: vae.graphs["prior_step"].run(feeds),
            }
            return vq_calls[row["part"]]()
        calls = {
            "encoder": lambda: [out for out in vae.encode(feeds["x"], label=label) if out is not None],
            "decoder": lambda: [vae.decode(feeds["z"], label=label)],
            "prior_sample": lambda: [vae.prior.sample(feeds["eps"])],
            "prior_log_prob": lambda: [vae.prior.log_prob(feeds["z"])],
            "prior_inverse": lambda: [vae.prior.inverse(feeds["z"])],
        }
        return calls[row["part"]]()

    return f"vaeport runtime, onnxruntime {onnxruntime.__version__}", run


RUNNERS = {
    "onnxruntime": onnxruntime_runner,
    "openvino": openvino_runner,
    "opencv": opencv_runner,
    "tract": tract_runner,
    "onnx2torch": onnx2torch_runner,
    "vaeport": vaeport_runner,
}


def main() -> None:
    kind, job_path, out_path = sys.argv[1:4]
    version, run = RUNNERS[kind]()
    with open(job_path) as f:
        job = json.load(f)
    arrays, status = {}, {}
    for row in job["rows"]:
        feeds = {name: np.load(path) for name, path in row["inputs"].items()}
        try:
            outs = (
                run(row["graph"], feeds, row["outputs"], row)
                if kind == "vaeport"
                else run(row["graph"], feeds, row["outputs"])
            )
            for i, out in enumerate(outs):
                arrays[f"{row['id']}/{i}"] = np.asarray(out, dtype=np.float32)
            status[row["id"]] = "ok"
        except Exception as exc:  # every runtime has its own exception types: report, do not stop
            text = str(exc).strip().splitlines()
            status[row["id"]] = f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
    np.savez(out_path, **arrays)
    print(json.dumps({"version": version, "status": status}))


if __name__ == "__main__":
    main()
