# Set-up is part of every target: a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch lies on this machine's disk; elsewhere override, e.g. `make test TORCH_SPEC=torch`.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: demo test install clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -c "import torch; print('torch==' + torch.__version__.split('+')[0])" > $(VENV)/torch-constraint.txt
	$(PY) -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[dev,spacy-model,explain,dedup,audit,fairness,lora]"
	$(PY) -m pip install -q --no-deps "kronfluence==1.0.1"
	touch $(STAMP)

# The tests also cover `--engine ray` (about 10-20 s more to install); the demo does not need it.
$(RAY_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[ray]"
	touch $(RAY_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fmaudit demo

test: $(STAMP) $(RAY_STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) reports/demo
