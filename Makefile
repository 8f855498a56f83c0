# Fusion: `make demo` and `make test` work on a fresh Debian machine with only Swift installed.
SWIFT      ?= swift
# MPI is optional at build time (loaded with dlopen under a launcher). The tests train data-parallel
# under Open MPI's mpirun and MPICH's mpiexec.mpich (the mpich package brings libmpich.so.12; Fusion
# needs no MPI headers); bench-mpi uses mpirun, which stays Open MPI's (update-alternatives priority
# 50 against MPICH's 40). Plots are drawn with cairo in DejaVu Sans.
APT_PKGS   := pkg-config libopenblas-dev libpng-dev libsndfile1-dev libcairo2-dev fonts-dejavu-core espeak-ng sox pngcheck libopenmpi-dev openmpi-bin mpich
# Tests import modules with @testable, which release builds allow only with -enable-testing.
TEST_FLAGS := -c release -Xswiftc -enable-testing
FUSION     := .build/release/fusion

# Notebooks short enough for every CI run (the others are run by hand: fusion notebook run FILE).
CI_NOTEBOOKS := notebooks-md/quickstart.md notebooks-md/own-recipe.md notebooks-md/own-images.md

.PHONY: setup build demo test test-interop bench bench-mpi lint clean notebooks fuzz

setup:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing"; \
	  if ! command -v apt-get >/dev/null; then \
	    echo "setup: apt-get not found. Install these packages with your package manager: $$missing" >&2; exit 1; fi; \
	  if [ "$$(id -u)" != 0 ]; then SUDO=sudo; command -v sudo >/dev/null || { \
	    echo "setup: not root and no sudo. As root run: apt-get install -y $$missing" >&2; exit 1; }; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null || { \
	    echo "setup: apt-get install failed. Run: apt-get install -y $$missing" >&2; exit 1; }; \
	fi

build: setup
	$(SWIFT) build -c release

# The mission end to end in about 2 minutes after the build: a Transfusion model trained from
# scratch (text and image losses on the progress line), images from it and from the shipped
# checkpoint, a caption of an image, and where the PNGs are.
DEMO_PROMPT := two blue squares
demo: build
	$(FUSION) train recipes/demo.yaml --fresh
	$(FUSION) sample --checkpoint runs/demo --prompt "$(DEMO_PROMPT)" --num 8 --out runs/demo/demo-trained.png
	$(FUSION) sample --checkpoint checkpoints/shapes-tiny-unet-50k --prompt "$(DEMO_PROMPT)" --num 8 --out runs/demo/demo-shipped.png
	$(FUSION) data shapes --out runs/demo/images --count 1 --seed 7 >/dev/null 2>&1
	@echo "caption of runs/demo/images/000000.png (truth: $$(sed -e 's/.*"text":"//' -e 's/".*//' runs/demo/images/metadata.jsonl)):"
	@printf '  trained here: '; $(FUSION) caption --checkpoint runs/demo --image runs/demo/images/000000.png
	@printf '  shipped:      '; $(FUSION) caption --checkpoint checkpoints/shapes-tiny-unet-50k --image runs/demo/images/000000.png
	@echo "pictures: runs/demo/demo-trained.png, runs/demo/demo-shipped.png (\"$(DEMO_PROMPT)\"), runs/demo/samples/ (the run's prompts), runs/demo/loss.png"

test: setup
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build --no-parallel
	$(FUSION) notebook run --check $(CI_NOTEBOOKS)

# The interop tests (transformers loads `fusion export --format hf`, python/fusion_torch matches
# Fusion, tensorboard reads a run's event files) skip in `make test` without these Python packages;
# this installs them (CPU PyTorch) and runs those suites.
INTEROP_TESTS := HuggingFaceExportTests|PythonLoaderTests|TensorBoardTests
test-interop: setup
	python3 -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu || python3 -m pip install --quiet torch
	python3 -m pip install --quiet transformers safetensors tensorboard
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	$(SWIFT) test $(TEST_FLAGS) --skip-build --no-parallel --filter "$(INTEROP_TESTS)"

notebooks: build
	$(FUSION) notebook run $(CI_NOTEBOOKS)

# Every benchmark beside its PyTorch twin (bench/torch_*.py; skipped with a note without PyTorch),
# interleaved, medians over BENCH_ROUNDS rounds (default 1, about 6 minutes a round), with ratios and peak memory;
# on AVX512-BF16 CPUs the training steps and the sample also in bf16 (fusion-bench --precision=bf16).
bench: build
	@if command -v python3 >/dev/null; then python3 bench/run.py --rounds $(or $(BENCH_ROUNDS),1) --threads $$(nproc); \
	else echo "bench: python3 not found, Fusion's figures only"; for b in gemm decoder transfusion chameleon sample vae; do \
	  .build/release/fusion-bench $$b | grep -v '^BENCH'; done; fi

# The reference decoder step on 1 vs 2 MPI ranks at the same global batch: scaling efficiency.
bench-mpi: build
	bench/mpi_scaling.sh 2

# libFuzzer harnesses (fuzz/), FUZZ_SECONDS each (default 600), two at a time; fails on a crash.
fuzz: setup
	FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) SWIFT=$(SWIFT) fuzz/fuzz.sh

# Lines per module, then swift-format's rules (.swift-format) over every Swift file; fails on any
# finding. The layout findings (indentation, line breaks, spacing, line length) are left out: the
# code keeps its hand alignment, which swift-format's pretty-printer would undo.
LAYOUT_FINDINGS = \[(AddLines|Indentation|LineLength|Spacing|TrailingComma|RemoveLine)\]
lint:
	@echo "lines per module:"; for d in Sources/*/ Tests/*/; do \
	  printf "  %-28s %6d\n" "$$d" $$(cat $$(find $$d -name '*.swift') /dev/null | wc -l); done
	@$(SWIFT) format --version > /dev/null 2>&1 || { echo "lint: this Swift toolchain has no swift-format (Swift 6 ships it)"; exit 1; }
	@findings=$$($(SWIFT) format lint --configuration .swift-format --recursive Sources Tests bench 2>&1 \
	  | grep -E 'warning|error' | grep -v -E '$(LAYOUT_FINDINGS)'); \
	if [ -n "$$findings" ]; then echo "$$findings"; echo "lint: $$(echo "$$findings" | wc -l) finding(s)"; exit 1; fi; \
	echo "lint: no findings"

clean:
	rm -rf .build .build-fuzz
