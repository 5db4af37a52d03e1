"""The Python API is the product and the CLIs are adapters over it: the README's snippet works,
and the API and the CLI make the same run folder and the same model folder from the same config."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import click
import numpy as np
import pytest
import torch

from vaeport.train import Run, TrainConfig, evaluate, fit
from vaeport.train.cli import config_args
from vaeport.train.cli import main as train_main
from vaeport.train.config import option_name

BIN = Path(sys.executable).parent
TIMING = {"images_per_second", "seconds", "eval_seconds", "train_seconds"}  # wall clock: differs run to run


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def assert_same_checkpoint(a: Path, b: Path) -> None:
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    for part in ("model",):
        assert sa[part].keys() == sb[part].keys()
        for key in sa[part]:
            assert torch.equal(sa[part][key], sb[part][key]), key
    assert without_timing(sa["progress"]) == without_timing(sb["progress"])
    assert sa["config"] == sb["config"] and sa["model_config"] == sb["model_config"]
    for left, right in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(left[k], right[k]) for k in left)


def test_every_config_field_is_a_cli_option_with_the_same_default():
    options = {p.name: p for p in train_main.params if isinstance(p, click.Option)}
    for f in fields(TrainConfig):
        assert f.name in options, f.name
        option = options[f.name]
        assert option.opts == [option_name(f)]
        assert option.default == f.default, f.name
        assert option.help == f.metadata["help"]
        if f.metadata.get("choices"):
            assert tuple(option.type.choices) == f.metadata["choices"]
    assert set(options) - {f.name for f in fields(TrainConfig)} == {"out", "resume", "force", "quiet"}


def test_every_export_option_is_a_cli_option_and_an_export_keyword(tmp_path):
    """ExportOptions is the one definition: vae-export's options are its fields, export() takes them
    as keywords and names an unknown one, models/build.py reads recipes into it."""
    from vaeport.export import ExportOptions, export
    from vaeport.export.cli import main as export_main
    from vaeport.runtime import InputError

    options = {p.name: p for p in export_main.params if isinstance(p, click.Option)}
    for f in fields(ExportOptions):
        assert options[f.name].opts == [option_name(f)] and options[f.name].default == f.default, f.name
        assert options[f.name].help == f.metadata["help"]
    assert set(options) - {f.name for f in fields(ExportOptions)} == {"out", "verify_dir", "against"}
    with pytest.raises(InputError, match="expected export options among .*, got fp61"):
        export(tmp_path / "run", tmp_path / "m", fp61=True)
    with pytest.raises(InputError, match="expected --calibration-size >= 1, got 0"):
        ExportOptions(calibration_size=0)
    with pytest.raises(InputError, match="expected --target to be one of portable, legacy"):
        ExportOptions(target="newest")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(),
        TrainConfig(arch="conv", hidden=(8, 16), depth=2, kind="ae", likelihood="gaussian", skip_bad_images=True),
        TrainConfig(objective="iwae-dreg", samples=3, lr=2.5e-4, kl_warmup_epochs=1.5, beta=0.5, seed=7, threads=1),
    ],
)
def test_config_args_give_back_the_config(config):
    context = train_main.make_context("vae-train", [*config_args(config), "--out", "x"])
    given = {f.name: context.params[f.name] for f in fields(TrainConfig)}
    assert TrainConfig(**given) == config


@pytest.mark.slow
def test_readme_snippet_and_cli_make_the_same_folders(tmp_path):
    """fit -> evaluate -> export -> VAE.load in Python, and vae-train/vae-eval/vae-export on the
    command line, for one config and seed: byte-identical graphs, manifest and config.json; the
    same metrics, eval numbers and checkpoint tensors (wall-clock fields excepted)."""
    from vaeport.export import export
    from vaeport.runtime import VAE

    config = TrainConfig(dataset="digits", arch="mlp", hidden=(64,), latent_dim=4, epochs=3, threads=1)
    run = fit(config, out=tmp_path / "api" / "run", quiet=True)
    report = evaluate(run, k=20)
    folder = export(run, tmp_path / "api" / "model", fp16=False)
    vae = VAE.load(folder)
    assert vae.sample(4, seed=0).shape == (4, 1, 8, 8)
    assert isinstance(run, Run) and run.config == config and len(run.metrics) == 3
    assert report["test_iwae_nll"] < report["test_neg_elbo"]

    cli = tmp_path / "cli"
    commands = [
        ["vae-train", *config_args(config), "--out", cli / "run", "--quiet"],
        ["vae-eval", cli / "run", "--k", "20"],
        ["vae-export", cli / "run", "--out", cli / "model"],
    ]
    for command in commands:
        done = subprocess.run([str(BIN / command[0]), *map(str, command[1:])], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    api, ours = tmp_path / "api", cli
    assert (api / "run" / "config.json").read_bytes() == (ours / "run" / "config.json").read_bytes()
    rows = [[json.loads(line) for line in (d / "run" / "metrics.jsonl").read_text().splitlines()] for d in (api, ours)]
    assert without_timing(rows[0]) == without_timing(rows[1])
    for name in ("last.pt", "best.pt"):
        assert_same_checkpoint(api / "run" / name, ours / "run" / name)
    cli_report = json.loads((ours / "run" / "eval.json").read_text())["torch"]
    assert without_timing(cli_report) == without_timing(report)
    for name in ("encoder.onnx", "decoder.onnx", "vae.json"):
        assert (api / "model" / name).read_bytes() == (ours / "model" / name).read_bytes(), name
    np.testing.assert_array_equal(VAE.load(ours / "model").sample(4, seed=0), vae.sample(4, seed=0))


def test_fit_resume_and_force(tmp_path):
    config = TrainConfig(hidden=(16,), latent_dim=2, epochs=1, threads=1)
    seen = []
    fit(config, tmp_path / "r", quiet=True, on_epoch=seen.append)
    assert [row["epoch"] for row in seen] == [1] and "test_neg_elbo" in seen[0]
    run = fit(config.replace(epochs=2), tmp_path / "r", resume=True, quiet=True, on_epoch=seen.append)
    assert [row["epoch"] for row in seen] == [1, 2] and run.config.epochs == 2
    with pytest.raises(ValueError, match="--latent-dim: saved 2, given 3"):
        fit(config.replace(latent_dim=3), tmp_path / "r", resume=True)
    with pytest.raises(ValueError, match="expected a new or empty folder"):
        fit(config, tmp_path / "r")
    assert len(fit(config, tmp_path / "r", force=True, quiet=True).metrics) == 1
    assert len(fit(None, tmp_path / "r", resume=True, quiet=True).metrics) == 1  # already done: nothing to add


def test_run_finished_only_for_a_whole_run_of_the_same_config(tmp_path):
    """models/build.py --reuse and benchmarks/conditional_trials.py --runs skip training on this."""
    config = TrainConfig(hidden=(16,), latent_dim=2, epochs=2, threads=1)
    assert not Run.finished(tmp_path / "r", config)  # no folder
    fit(config.replace(epochs=1), tmp_path / "r", quiet=True)
    assert not Run.finished(tmp_path / "r", config)  # one epoch of two
    fit(config, tmp_path / "r", resume=True, quiet=True)
    assert Run.finished(tmp_path / "r", config)
    assert not Run.finished(tmp_path / "r", config.replace(seed=1))  # another config
    (tmp_path / "r" / "last.pt").unlink()
    assert not Run.finished(tmp_path / "r", config)
    (tmp_path / "r" / "config.json").write_text("{")
    assert not Run.finished(tmp_path / "r", config)  # unreadable config: not finished, no crash


def test_fit_leaves_torch_threads_as_it_found_them(tmp_path):
    """fit(threads=1) must not leave the caller's process on one thread (the export that follows in
    a notebook would then run, and time, differently from the CLI's)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fit(TrainConfig(hidden=(16,), latent_dim=2, epochs=1, threads=1), tmp_path / "r", quiet=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_parity_figures_do_not_depend_on_the_callers_threads(tmp_path):
    """The parity section written into vae.json is computed on one thread whatever the exporting
    process set, so the same run exports to the same manifest bytes."""
    import torch

    from vaeport.export import export

    run = fit(TrainConfig(dataset="digits", hidden=(64,), latent_dim=4, epochs=1, threads=1), tmp_path / "r", quiet=True)
    before = torch.get_num_threads()
    manifests = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            folder = export(run, tmp_path / f"m{threads}")
            manifests.append(json.loads((folder / "vae.json").read_text()))
    finally:
        torch.set_num_threads(before)
    assert manifests[0]["parity"] == manifests[1]["parity"]
    assert manifests[0]["files"] == manifests[1]["files"]
