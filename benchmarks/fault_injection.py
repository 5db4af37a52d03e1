"""Fault injection for vae-generate: kill it at random moments, resume, and compare with a run that
was never interrupted.

Scenarios (each against an uninterrupted reference run of the same command):
- npy-sigkill: 200,000 images as .npy chunks, SIGKILL at 5 random moments, resumed after each;
- png-sigkill: 20,000 images as PNG folders, SIGKILL at 5 random moments;
- npy-sigint: 200,000 images, Ctrl-C (SIGINT) at 5 random moments;
- damaged: a finished folder with one chunk truncated, one with a flipped byte and one stray
  temporary file, then re-run.
The result must be byte-identical files and no leftovers, every time.

    python benchmarks/fault_injection.py [--model models/fashion-mnist] [--kills 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_result

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every output file (the shard records hold timings, so they are left out)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("generate-"):
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def command(model: Path, n: int, fmt: str, out: Path) -> list[str]:
    chunk = max(1, min(10_000, n // 8))  # 10,000 (the default) for the full-size runs; at least 8 chunks
    return [str(BIN / "vae-generate"), str(model), "-n", str(n), "--format", fmt, "--seed", "0", "--out", str(out),
            "--chunk-size", str(chunk), "--quiet", "--device", "cpu"]  # fmt: skip


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C reaches it as a user's would
    )


def run_to_end(args: list[str], out: Path) -> tuple[float, float, str]:
    """(seconds to start writing, seconds in all, stdout) of one uninterrupted run into `out`."""
    started = time.perf_counter()
    proc = start(args)
    while not (out / "generate-0-of-1.json").exists() and proc.poll() is None:
        time.sleep(0.005)
    startup = time.perf_counter() - started
    stdout, stderr = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {stderr}")
    return startup, time.perf_counter() - started, stdout.strip()


def chunks_in(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if not p.name.startswith((".", "generate-")))


def interrupted(model: Path, n: int, fmt: str, sig: int, kills: int, root: Path, rng: random.Random) -> dict[str, Any]:
    ref, out = root / "ref", root / "cut"
    startup, reference_seconds, _ = run_to_end(command(model, n, fmt, ref), ref)
    work, total_chunks = reference_seconds - startup, chunks_in(ref)
    events = []
    record = out / "generate-0-of-1.json"
    for _ in range(kills):
        left = 1.0 - (chunks_in(out) if out.exists() else 0) / total_chunks
        launched = time.time()
        proc = start(command(model, n, fmt, out))
        # Wait until this run has verified what is on disk (it then rewrites its record), and kill
        # it at a random moment of the decoding and writing that is left.
        while proc.poll() is None and not (record.exists() and record.stat().st_mtime >= launched):
            time.sleep(0.002)
        delay = rng.uniform(0.02, 0.98) * left * work
        time.sleep(delay)
        proc.send_signal(sig)
        proc.communicate(timeout=600)
        events.append(
            {
                "seconds_into_writing": round(delay, 3),
                "returncode": proc.returncode,
                "chunks_on_disk": chunks_in(out),
                "temporary_leftovers": len([h for h in hidden(out) if h.endswith(".tmp")]),
            }
        )
    _, final_seconds, summary = run_to_end(command(model, n, fmt, out), out)
    result = compare(ref, out)
    shutil.rmtree(ref)
    shutil.rmtree(out)
    return {
        **result,
        "n": n,
        "format": fmt,
        "signal": signal.Signals(sig).name,
        "kills": len(events),
        "kills_that_stopped_the_run": sum(e["returncode"] != 0 for e in events),
        "kills_that_left_temporary_files": sum(e["temporary_leftovers"] > 0 for e in events),
        "events": events,
        "final_run": summary,
        "reference_seconds": reference_seconds,
        "final_run_seconds": final_seconds,
    }


def damaged(model: Path, n: int, root: Path) -> dict[str, Any]:
    ref, out = root / "ref", root / "damaged"
    run_to_end(command(model, n, "npy", ref), ref)
    run_to_end(command(model, n, "npy", out), out)
    chunks = sorted(out.glob("images-*.npy"))
    chunks[1].write_bytes(chunks[1].read_bytes()[: chunks[1].stat().st_size // 3])  # truncated
    data = bytearray(chunks[3].read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    chunks[3].write_bytes(bytes(data))
    (out / f".{chunks[0].name}.deadbeef.tmp").write_bytes(b"half a chunk")  # a stray temporary file
    _, _, summary = run_to_end(command(model, n, "npy", out), out)
    record = json.loads((out / "generate-0-of-1.json").read_text())
    result = {
        **compare(ref, out),
        "n": n,
        "damage": "chunk 2 truncated to a third, chunk 4 one bit flipped, one stray temporary file",
        "chunks_rewritten": record["chunks_replaced"],
        "leftovers_removed": record["leftovers_removed"],
        "final_run": summary,
    }
    shutil.rmtree(ref)
    shutil.rmtree(out)
    return result


def compare(ref: Path, out: Path) -> dict[str, Any]:
    want, got = digests(ref), digests(out)
    return {
        "files": len(want),
        "identical": want == got,
        "differing_files": sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k)),
        "leftovers": hidden(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "fashion-mnist")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=200_000, help="n of the .npy scenarios (PNG: a tenth)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    scenarios: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="vaeport-faults-") as tmp:
        root = Path(tmp)
        for name, n, fmt, sig in (
            ("npy-sigkill", args.images, "npy", signal.SIGKILL),
            ("png-sigkill", args.images // 10, "png", signal.SIGKILL),
            ("npy-sigint", args.images, "npy", signal.SIGINT),
        ):
            print(f"== {name}", flush=True)
            scenarios[name] = interrupted(args.model, n, fmt, sig, args.kills, root, rng)
        print("== damaged", flush=True)
        scenarios["damaged"] = damaged(args.model, args.images // 4, root)
    rows = [
        [name, s["n"], s.get("kills", "-"), s.get("kills_that_stopped_the_run", "-"),
         s.get("kills_that_left_temporary_files", s.get("leftovers_removed", "-")), s["files"], s["identical"],
         len(s["leftovers"])]
        for name, s in scenarios.items()
    ]  # fmt: skip
    print_table(["scenario", "images", "kills", "stopped", "temp files left", "files", "identical", "leftovers"], rows)
    path = write_result("fault_injection", {"model": args.model.name, "scenarios": scenarios})
    print(f"wrote {path}")
    if not all(s["identical"] and not s["leftovers"] for s in scenarios.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
