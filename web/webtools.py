"""Python side of the web tools: serve the repo's web/ and model folders on 127.0.0.1, and run the
Node.js helpers (onnxruntime-node, headless Chromium through playwright-core).

Used by `make web`, benchmarks/parity_matrix.py and tests/e2e/test_web.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
CHROMIUM = Path("/usr/bin/chromium")


def missing_tools() -> str | None:
    """Why the Node/Chromium columns cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (WEB / "node_modules" / "onnxruntime-web").is_dir():
        return "web/node_modules is missing (run `make web-setup`)"
    if not CHROMIUM.exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    return None


def missing_node() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (WEB / "node_modules" / "onnxruntime-node").is_dir():
        return "web/node_modules is missing (run `make web-setup`)"
    return None


class MappedHandler(http.server.SimpleHTTPRequestHandler):
    """Serves URL prefixes from chosen folders, e.g. {"/web/": web, "/model/": a model folder}."""

    mounts: ClassVar[dict[str, Path]] = {}

    def translate_path(self, path: str) -> str:
        clean = path.split("?", 1)[0].split("#", 1)[0]
        for prefix, folder in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            if clean.startswith(prefix):
                target = (folder / clean[len(prefix) :]).resolve() if prefix.endswith("/") else folder
                if prefix.endswith("/") and not target.is_relative_to(folder.resolve()):
                    return str(folder / "__outside__")
                return str(target)
        return str(WEB / "__not_found__")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def serve(mounts: dict[str, Path], port: int = 0) -> Iterator[str]:
    """Serve `mounts` on 127.0.0.1 in a thread; yields the base URL."""
    handler = type("Handler", (MappedHandler,), {"mounts": mounts})
    handler.extensions_map = {**MappedHandler.extensions_map, ".mjs": "text/javascript", ".wasm": "application/wasm"}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def browser(url: str, expression: str | None = None, screenshot: Path | None = None, timeout: float = 180) -> Any:
    """Open `url` in headless Chromium, wait for window.vaeportReady, return `expression`'s value."""
    cmd = ["node", str(WEB / "tools" / "browser.mjs"), url]
    if expression:
        cmd += ["--eval", expression]
    if screenshot:
        cmd += ["--screenshot", str(screenshot)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=WEB)
    if done.returncode != 0:
        raise RuntimeError(f"chromium run failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout or "null")


def node_parity(model_dir: Path, inputs: Path, timeout: float = 180) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(WEB / "tools" / "node_parity.mjs"), str(model_dir), str(inputs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=WEB,
    )
    if done.returncode != 0:
        raise RuntimeError(f"onnxruntime-node run failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    """`make web`: serve the demo until Ctrl-C."""
    import sys
    import time

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    with serve({"/web/": WEB, "/models/": ROOT / "models"}, port=port) as base:
        print(f"vaeport web demo: {base}/web/?model=/models/fashion-mnist/  (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
