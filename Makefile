# spatialrl — `make demo` and `make test` set up .venv on a fresh machine, then run the demo / the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

DEMO_OUT ?= runs/demo

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The whole method on a CPU against an equal-time SFT control (docs/demo.md, docs/getting-started.md), then its report.
# Finished stages are reused, so an interrupted run continues where it stopped. The last lines
# printed are the scores and the report's path.
demo: $(STAMP)
	$(PY) -m spatialrl demo --out $(DEMO_OUT) --set report=false
	$(PY) -m spatialrl report $(DEMO_OUT)

test: $(STAMP)
	@# Headless Chromium checks the HTML report (tests/test_report.py); Debian's package.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "warning: could not install chromium; the browser test of the report will be skipped"
	$(PY) -m pytest -q

# Every performance script in benchmarks/ (and nothing else there: investigations live in experiments/);
# each prints the ratios and figures recorded in docs/performance.md.
bench: $(STAMP)
	$(PY) benchmarks/rewards.py --update-docs
	$(PY) benchmarks/reward_fuzz.py
	$(PY) benchmarks/data_build.py
	$(PY) benchmarks/scan_build.py
	$(PY) benchmarks/eval_scoring.py
	$(PY) benchmarks/generation.py
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/shared_prompt_pass.py
	$(PY) benchmarks/real_architecture.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
