# Two commands from a fresh clone: `make demo` and `make test`. Everything else is set-up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_BACKEND ?= tensorflow
export MPLBACKEND ?= Agg

.PHONY: demo test install clean system-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# `make test` needs everything ([dev]); `make demo` only the TensorFlow set, which [dev] includes: a venv
# installed for the tests serves the demo as it is, and one installed for the demo gets only the rest.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml | $(PY)
	@if [ $(STAMP) -nt pyproject.toml ]; then :; else $(PY) -m pip install --quiet -e ".[tensorflow]"; fi
	touch $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m deploy.demo --out demo_out

# The suite is mostly single-threaded Python (tracing, conversion), so test files run in parallel,
# one worker per core up to four; a file stays on one worker so its module fixtures are built once.
# On 2 cores: 735 s one by one, 487 s with two workers. TEST_JOBS=1 runs them in this process.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))

# Lint and format check first (config in pyproject.toml): seconds, and a failure names file and line.
test: system-deps $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(if $(filter 1,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) $(PYTEST_ARGS)

# Headless Chromium for the edge app's --serve browser test; installed once, only where apt-get
# can run (root). Without it that one test skips and says why.
system-deps:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium (apt-get) for the edge app's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } || \
		echo "could not install chromium: the --serve browser test will skip"; \
	fi

clean:
	rm -rf $(VENV) demo_out .pytest_cache
