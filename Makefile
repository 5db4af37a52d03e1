# `make demo` and `make test` work in a fresh clone: each creates .venv, installs the pinned
# CPU torch first (a bare `torch` requirement would pull a multi-GB CUDA build), then vaeport.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.vaeport-installed
DEMO   := out/demo

.PHONY: setup web-setup web parity demo test test-fast lint bench quality models clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[train,cpu,dev]'
	touch $@

setup: $(STAMP)

# Node packages for the browser demo and the parity matrix, pinned by web/package-lock.json.
# Without Node.js this is skipped, and so are the Node/Chromium checks (marked skipped, not faked).
web-setup:
	@if ! command -v npm >/dev/null; then echo "npm not found: Node and browser checks will be skipped"; \
	elif [ -d web/node_modules/onnxruntime-web ] && [ web/node_modules/.package-lock.json -nt web/package-lock.json ]; then :; \
	else (cd web && npm ci --ignore-scripts --no-audit --no-fund --silent) || \
	    echo "npm ci failed: Node and browser checks will be skipped"; fi

web: $(STAMP) web-setup
	$(BIN)/python web/webtools.py 8000

parity: $(STAMP) web-setup
	$(BIN)/python benchmarks/parity_matrix.py
	$(BIN)/python benchmarks/compatibility.py

# The Python API (fit, evaluate, export, VAE) on digits, then the CLI and the runtime on the shipped model.
demo: $(STAMP)
	$(BIN)/python examples/quickstart.py $(DEMO)
	rm -rf $(DEMO)/fashion-samples
	$(BIN)/vae-generate models/fashion-mnist -n 64 --seed 0 --format grid --out $(DEMO)/fashion-samples --quiet
	$(BIN)/python examples/interpolate.py models/fashion-mnist $(DEMO)/fashion-interpolation.png
	rm -rf $(DEMO)/sneakers
	$(BIN)/vae-generate models/fashion-mnist-cvae -n 64 --label Sneaker --format grid --out $(DEMO)/sneakers --quiet
	rm -rf $(DEMO)/vq-shirts
	$(BIN)/vae-generate models/fashion-mnist-vq -n 64 --label Shirt --format grid --out $(DEMO)/vq-shirts --quiet
	@echo "demo results: run folder $(DEMO)/run (metrics.jsonl, eval.json), model folder $(DEMO)/model,"
	@echo "              digits samples $(DEMO)/samples.png,"
	@echo "              shipped Fashion-MNIST model: $(DEMO)/fashion-samples/grid.png, $(DEMO)/fashion-interpolation.png"
	@echo "              conditional model, 64 sneakers: $(DEMO)/sneakers/grid.png"
	@echo "              VQ-VAE, 64 shirts drawn step by step from its prior: $(DEMO)/vq-shirts/grid.png"

test: $(STAMP) web-setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/export.py
	$(BIN)/python benchmarks/runtime_speed.py

quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/conditional.py
	$(BIN)/python benchmarks/priors.py

models: $(STAMP)
	$(BIN)/python models/build.py

clean:
	rm -rf $(VENV) out build *.egg-info
