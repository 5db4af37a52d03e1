import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from vaeport.export import pipeline
from vaeport.export.cli import main as export_main
from vaeport.export.graphs import check_graph
from vaeport.export.parity import FP32
from vaeport.export.pipeline import verify_against
from vaeport.export.variants import FP16, INT8_MAX_MEAN_PIXEL_DIFF
from vaeport.runtime.errors import ExportError, InputError, ModelFolderError, ParityError
from vaeport.runtime.hashing import sha256_file
from vaeport.runtime.manifest import verify_folder
from vaeport.train.load import load_run

from ..conftest import write_idx_set
from ..helpers import export_manifest, make_run, write_rgb_npy

CASES = {
    "mlp-vae-8x8": dict(arch="mlp", kind="vae"),
    "conv-ae-8x8": dict(arch="conv", kind="ae", hidden=(8, 16)),
    "conv-vae-28x28": dict(arch="conv", kind="vae", hidden=(8, 16), dataset="mnist"),
    "mlp-ae-28x28": dict(arch="mlp", kind="ae", dataset="mnist"),
    "conv-vae-32x32x3": dict(arch="conv", kind="vae", hidden=(8, 16), dataset="npy"),
    "mlp-vae-32x32x3-gaussian": dict(arch="mlp", kind="vae", dataset="npy", likelihood="gaussian"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    idx = write_idx_set(root / "idx")
    npy = write_rgb_npy(root / "rgb.npy")
    made = {}
    for name, case in CASES.items():
        case = dict(case)
        dataset = case.pop("dataset", "digits")
        if dataset == "mnist":
            made[name] = make_run(root / name, "mnist", data_dir=idx, **case)
        elif dataset == "npy":
            made[name] = make_run(root / name, f"npy:{npy}", **case)
        else:
            made[name] = make_run(root / name, **case)
    return made


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {name: (export_manifest(run, root / name), root / name) for name, run in runs.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_parity_gate_passes_and_matches_torch(name, runs, exported):
    manifest, folder = exported[name]
    report = manifest["parity"]["fp32"]
    assert report["passed"]
    assert report["tolerance"]["rtol"] == FP32.rtol and report["tolerance"]["atol"] == FP32.atol
    against = {c["against"] for c in report["checks"]}
    assert {"onnxruntime-cpu", "onnx.reference"} <= against
    assert {c["batch"] for c in report["checks"]} >= {1, 7, 64}
    if manifest["model"]["kind"] == "vae":
        assert any(c["against"].startswith("numpy reparameterize") for c in report["checks"])
    # Independent check at a batch size the gate never used.
    model, _, _ = load_run(runs[name])
    z = np.random.default_rng(9).standard_normal((13, manifest["model"]["latent_dim"]), dtype=np.float32)
    session = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = torch.sigmoid(model.decoder(torch.from_numpy(z))).numpy()
    np.testing.assert_allclose(session.run(None, {"z": z})[0], expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["mlp-vae-8x8", "conv-vae-28x28", "conv-ae-8x8"])
def test_graph_io_and_dynamic_batch(name, exported):
    manifest, folder = exported[name]
    c, h, w = (manifest["image"][k] for k in ("channels", "height", "width"))
    d = manifest["model"]["latent_dim"]
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in enc.get_outputs()]
    assert names == (["z_mean", "z_log_var"] if manifest["model"]["kind"] == "vae" else ["z"])
    spec = manifest["files"]["encoder.onnx"]
    assert spec["inputs"] == [{"name": "x", "shape": ["N", c, h, w], "dtype": "float32"}]
    assert manifest["files"]["decoder.onnx"]["outputs"][0]["shape"] == ["N", c, h, w]
    for batch in (1, 5, 33):
        outs = enc.run(None, {"x": np.random.default_rng(batch).random((batch, c, h, w), dtype=np.float32)})
        assert all(o.shape == (batch, d) for o in outs)


def test_no_random_ops_in_exported_graphs_and_checker_refuses_them(exported):
    for _, folder in exported.values():
        for file in ("encoder.onnx", "decoder.onnx"):
            ops = {n.op_type for n in onnx.load(str(folder / file)).graph.node}
            assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "Dropout"}
    h = onnx.helper
    graph = h.make_graph(
        [h.make_node("RandomNormalLike", ["z"], ["x"])],
        "g",
        [h.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["N", 2])],
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 2])],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 20)])
    with pytest.raises(ExportError, match=r"expected no random ops .* got RandomNormalLike"):
        check_graph(model.SerializeToString(), "decoder.onnx")


def test_manifest_hashes_verify_and_tampering_is_caught(exported, tmp_path):
    manifest, folder = exported["mlp-vae-8x8"]
    assert verify_folder(folder).latent_dim == 4
    for file, spec in manifest["files"].items():
        assert sha256_file(folder / file) == spec["sha256"]
    assert manifest["training"]["dataset"] == "digits" and manifest["versions"]["onnxruntime"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in folder.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    data = bytearray((copy / "decoder.onnx").read_bytes())
    data[-5] ^= 0xFF
    (copy / "decoder.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match="expected sha256"):
        verify_folder(copy)


def test_export_is_deterministic(runs, tmp_path):
    a = export_manifest(runs["conv-vae-28x28"], tmp_path / "a")
    b = export_manifest(runs["conv-vae-28x28"], tmp_path / "b")
    for file in ("encoder.onnx", "decoder.onnx"):
        assert a["files"][file]["sha256"] == b["files"][file]["sha256"]


def test_fp16_and_int8_variants_within_tolerance(runs, tmp_path):
    manifest = export_manifest(runs["conv-vae-28x28"], tmp_path / "m", fp16=True, int8=True)
    assert set(manifest["graphs"]) == {"fp32", "fp16", "int8"}
    fp16 = manifest["parity"]["fp16"]
    assert fp16["passed"] and all(c["max_abs"] <= FP16.atol + FP16.rtol * 10 for c in fp16["checks"])
    int8 = manifest["parity"]["int8"]
    assert int8["passed"] and int8["reconstruction_mean_abs_pixel_diff"] <= INT8_MAX_MEAN_PIXEL_DIFF
    assert fp16["decode_speed_vs_fp32"] > 0 and int8["decode_speed_vs_fp32"] > 0
    fp16_graph = onnx.load(str(tmp_path / "m" / "decoder.fp16.onnx"))
    assert fp16_graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in fp16_graph.graph.initializer)
    int8_ops = {n.op_type for n in onnx.load(str(tmp_path / "m" / "decoder.int8.onnx")).graph.node}
    assert "QuantizeLinear" in int8_ops and "DequantizeLinear" in int8_ops
    report = verify_against(tmp_path / "m", runs["conv-vae-28x28"])
    assert all(section["passed"] for section in report.values())


def test_refused_int8_keeps_the_export_that_passed(runs, tmp_path, monkeypatch):
    monkeypatch.setattr("vaeport.export.variants.INT8_MAX_MEAN_PIXEL_DIFF", 0.0)
    manifest = export_manifest(runs["mlp-vae-8x8"], tmp_path / "m", fp16=True, int8=True)
    assert set(manifest["graphs"]) == {"fp32", "fp16"}
    assert sorted(p.name for p in (tmp_path / "m").glob("*.onnx")) == [
        "decoder.fp16.onnx",
        "decoder.onnx",
        "encoder.fp16.onnx",
        "encoder.onnx",
    ]
    refused = manifest["parity"]["int8"]
    assert not refused["passed"] and "mean |pixel diff| to fp32" in refused["refusal"]
    assert refused["reconstruction_mean_abs_pixel_diff"] > 0
    assert verify_folder(tmp_path / "m").variants == ["fp32", "fp16"]
    # The CLI says so on stderr and exits 0; --require-variants makes it a failure that writes nothing.
    code, stdout, stderr = run_cli([runs["mlp-vae-8x8"], "--out", tmp_path / "cli", "--int8"])
    assert code == 0, stderr
    assert "warning: int8 variant refused" in stderr and "int8: REFUSED" in stdout
    code, _, stderr = run_cli([runs["mlp-vae-8x8"], "--out", tmp_path / "strict", "--int8", "--require-variants"])
    assert code == ParityError.exit_code and "error: int8 variant refused" in stderr.splitlines()[-1]
    assert not (tmp_path / "strict").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def run_cli(args):
    result = CliRunner().invoke(export_main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_export_and_verify(runs, tmp_path):
    out = tmp_path / "model"
    code, stdout, stderr = run_cli([runs["mlp-vae-8x8"], "--out", out, "--name", "digits-test"])
    assert code == 0, stderr
    assert "fp32: " in stdout and "PASS" in stdout
    assert json.loads((out / "vae.json").read_text())["name"] == "digits-test"
    code, stdout, stderr = run_cli(["--verify", out, "--against", runs["mlp-vae-8x8"]])
    assert code == 0 and "PASS" in stdout, stderr
    code, stdout, stderr = run_cli(["--verify", out, "--against", runs["mlp-ae-28x28"]])
    assert code == 2 and "does not come from" in stderr


def test_cli_verify_fails_against_other_weights(runs, tmp_path):
    out = tmp_path / "model"
    export_manifest(runs["mlp-vae-8x8"], out)
    other = make_run(tmp_path / "other", arch="mlp", kind="vae", hidden=(32,), epochs=2)
    code, stdout, stderr = run_cli(["--verify", out, "--against", other])
    assert code == ParityError.exit_code and "FAIL" in stdout and "parity check failed for fp32" in stderr


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("none", ["{tmp}/missing", "--out", "{tmp}/m"], "expected a run folder"),
        ("corrupt", ["{run}", "--out", "{tmp}/m"], "expected a vaeport checkpoint, got an unreadable file"),
        ("foreign", ["{run}", "--out", "{tmp}/m"], "expected a vaeport checkpoint, got a file of another kind"),
        ("exists", ["{run}", "--out", "{tmp}/m"], "expected a new folder, got an existing one"),
        ("none", ["{run}", "--out", "{tmp}/m", "--opset", "11"], "expected --opset between 18 and 23, got 11"),
    ],
)
def test_cli_errors_leave_nothing(runs, tmp_path, setup, args, message):
    run = tmp_path / "run"
    run.mkdir()
    for item in runs["mlp-vae-8x8"].iterdir():
        (run / item.name).write_bytes(item.read_bytes())
    if setup == "corrupt":
        (run / "best.pt").write_bytes(b"garbage")
    elif setup == "foreign":
        torch.save({"state_dict": {}}, run / "best.pt")
    elif setup == "exists":
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "mine.txt").write_text("keep")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, stderr = run_cli([a.replace("{tmp}", str(tmp_path)).replace("{run}", str(run)) for a in args])
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and message in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_failing_parity_gate_writes_nothing(runs, tmp_path, monkeypatch):
    real = pipeline.export_role

    def wrong_decoder(model, role, opset):
        if role != "decoder":
            return real(model, role, opset)
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.add_(0.5)
        data = real(model, role, opset)
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.sub_(0.5)
        return data

    monkeypatch.setattr(pipeline, "export_role", wrong_decoder)
    code, _, stderr = run_cli([runs["mlp-vae-8x8"], "--out", tmp_path / "m"])
    assert code == ParityError.exit_code and "parity gate failed: decoder.x vs onnxruntime-cpu at batch 1" in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "opset", "ir"), [({}, 18, 8), ({"opset": 20}, 20, 9), ({"target": "legacy"}, 13, 7)]
)
def test_graphs_carry_the_lowest_ir_version_and_a_named_batch_axis(runs, tmp_path, options, opset, ir):
    manifest = export_manifest(runs["conv-vae-28x28"], tmp_path / "m", fp16=True, int8=True, **options)
    assert manifest["target"]["opset"] == manifest["opset"] == opset and manifest["target"]["ir_version"] == ir
    assert all(section["passed"] for section in manifest["parity"].values())
    graphs = sorted((tmp_path / "m").glob("*.onnx"))
    assert len(graphs) == 6
    for path in graphs:
        model = onnx.load(str(path))
        assert model.ir_version == ir == onnx.helper.find_min_ir_version_for(list(model.opset_import), True)
        assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {opset}
        values = [*model.graph.input, *model.graph.output, *model.graph.value_info]
        assert len(values) > 8  # shapes are inferred for the intermediate tensors too
        for value in values:
            dims = value.type.tensor_type.shape.dim
            assert all(d.HasField("dim_value") or (i == 0 and d.dim_param == "N") for i, d in enumerate(dims)), (
                path.name,
                value.name,
            )


def test_legacy_refuses_what_opset_13_cannot_express():
    from vaeport.export.legacy import to_legacy

    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])
    gelu = h.make_model(h.make_graph([h.make_node("Gelu", ["x"], ["y"], name="act")], "g", [x], [y]),
                        opset_imports=[h.make_opsetid("", 20)])  # fmt: skip
    with pytest.raises(InputError, match=r"--target legacy: Gelu \(act\) needs opset 20 .* use --target portable"):
        to_legacy(gelu)
    shape = onnx.numpy_helper.from_array(np.array([0, 4], dtype=np.int64), "shape")
    reshape = h.make_model(
        h.make_graph([h.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)], "g", [x], [y], [shape]),
        opset_imports=[h.make_opsetid("", 18)],
    )
    with pytest.raises(InputError, match="Reshape .* needs opset 14 .allowzero=1 with a shape that may hold 0"):
        to_legacy(reshape)


@pytest.mark.parametrize(("axis", "bias"), [(-1, True), (1, False)])
def test_legacy_writes_layer_normalization_as_its_primitives(axis, bias):
    """LayerNormalization (opset 17) becomes ReduceMean/Sub/Mul/Sqrt/Div at opset 13 with the same
    result, whatever its axis and with or without a bias; a float16 input is refused."""
    import onnxruntime as ort

    from vaeport.export.legacy import to_legacy

    h, rng = onnx.helper, np.random.default_rng(0)
    scale = onnx.numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "scale")
    shift = onnx.numpy_helper.from_array(rng.standard_normal((3, 5)).astype(np.float32), "shift")
    inputs = ["x", "scale", "shift"] if bias else ["x", "scale"]

    def model(dtype):
        x = h.make_tensor_value_info("x", dtype, ["N", 3, 5])
        y = h.make_tensor_value_info("y", dtype, ["N", 3, 5])
        node = h.make_node("LayerNormalization", inputs, ["y"], name="norm", axis=axis, epsilon=1e-3)
        graph = h.make_graph([node], "g", [x], [y], [scale, shift] if bias else [scale])
        return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])

    x = rng.standard_normal((4, 3, 5)).astype(np.float32) * 3 + 1
    legacy = to_legacy(model(onnx.TensorProto.FLOAT))
    assert legacy.opset_import[0].version == 13
    assert "LayerNormalization" not in {node.op_type for node in legacy.graph.node}
    want, got = (ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0] for m in (model(1), legacy))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match="LayerNormalization .norm. needs opset 17 .a float32 input"):
        to_legacy(model(onnx.TensorProto.FLOAT16))


def test_target_errors_leave_nothing(runs, tmp_path):
    code, _, stderr = run_cli([runs["mlp-vae-8x8"], "--out", tmp_path / "m", "--target", "ancient"])
    assert code == 2 and "Invalid value for '--target'" in stderr
    code, _, stderr = run_cli([runs["mlp-vae-8x8"], "--out", tmp_path / "m", "--target", "legacy", "--opset", "20"])
    assert code == 2 and "expected --opset only with --target portable (--target legacy is opset 13)" in stderr
    assert list(tmp_path.iterdir()) == []
