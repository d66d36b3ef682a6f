# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(PY) -m pip --disable-pip-version-check
DEMO   ?= demo
PATIENTS ?= 48
# PyRadiomics is the test oracle of the PyRadiomics-compatible mode; its sdist
# needs numpy at build time, hence --no-build-isolation.
ORACLE  = pyradiomics==3.0.1

.PHONY: demo test lint venv clean

# setup.py compiles the segment-mode kernels ahead of time: rebuilt when their source changes.
AOT_SOURCES = setup.py $(addprefix radflow/features/,_aot_spec.py _shared_kernels.py _mesh.py)

$(VENV)/.installed: pyproject.toml $(AOT_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e ".[test]"
	$(PIP) install -q numpy versioneer setuptools wheel
	$(PIP) install -q --no-build-isolation "$(ORACLE)"
	@# The report's browser test renders the HTML in Debian's headless Chromium.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) || echo "chromium not installed: the browser test will skip"
	touch $@

venv: $(VENV)/.installed

# The demo pseudonymises with its own public key (DEMO/demo-pseudonym.key), as `radflow demo`
# does wherever it is started; an archive of another PATIENTS is written anew.
demo: $(VENV)/.installed
	$(VENV)/bin/radflow demo --out $(DEMO) --patients $(PATIENTS)

test: $(VENV)/.test-installed
	$(PY) -m pytest -q

# Lint, format and the layer contract (pyproject.toml); .ci/run runs it before the tests.
lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check radflow tests benchmarks
	$(VENV)/bin/ruff format --check radflow tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
