# spatialrl — `make demo` and `make test` set up .venv on a fresh machine, then run the demo / the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A second environment for verl 0.9.1 (`make test-verl`): verl pins transformers <5.11, which the
# main environment's [train] (transformers 5.23.0) cannot share.
VERL_VENV := .venv-verl
VERL_PY := $(VERL_VENV)/bin/python
VERL_STAMP := $(VERL_VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

DEMO_OUT ?= runs/demo

.PHONY: install demo reproduce test test-verl bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[train,semantic,test]"
	touch $(STAMP)

install: $(STAMP)

# The whole method on a CPU against an equal-time SFT control (docs/demo.md, docs/getting-started.md), then its report.
# Finished stages are reused, so an interrupted run continues where it stopped. The last lines
# printed are the scores and the report's path.
demo: $(STAMP)
	$(PY) -m spatialrl demo --out $(DEMO_OUT) --set report=false
	$(PY) -m spatialrl report $(DEMO_OUT)

# Every claim of both papers over five seeds, two cells at a time (docs/reproduce.md; hours on
# 2 cores, resumable: run it again to continue).
reproduce: $(STAMP)
	$(PY) -m spatialrl reproduce all --seeds 5 --jobs 2 --results docs/results/reproduce.json --doc docs/RESULTS.md

test: $(STAMP)
	@# Headless Chromium checks the HTML report (tests/test_report.py); Debian's package.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "warning: could not install chromium; the browser test of the report will be skipped"
	$(PY) -m pytest -q

# verl 0.9.1 with the transformers of its window (5.10.4), torch 2.13.0 (the CPU build on the
# machine) installed first and held by a constraint so that nothing re-resolves it; verl's
# trainer modules also import cachetools, fastapi and uvicorn (its [verl-core] extra, whose other
# members pull torchvision or CUDA packages, is not installed). Then spatialrl's [verl] extra.
$(VERL_STAMP): pyproject.toml
	test -x $(VERL_PY) || $(PYTHON) -m venv $(VERL_VENV)
	echo "torch==2.13.0" > $(VERL_VENV)/constraints.txt
	$(VERL_PY) -m pip install --quiet --upgrade pip
	$(VERL_PY) -m pip install --quiet torch==2.13.0
	$(VERL_PY) -m pip install --quiet -c $(VERL_VENV)/constraints.txt verl==0.9.1 transformers==5.10.4 \
		cachetools==8.0.3 fastapi==0.165.0 uvicorn==0.55.0 pytest==9.2.0 pytest-timeout==2.4.0
	$(VERL_PY) -m pip install --quiet -c $(VERL_VENV)/constraints.txt -e ".[verl]"
	touch $(VERL_STAMP)

# spatialrl.integrations.verl against verl's own code, on CPU (tests_verl/, which `make test` and
# a bare `pytest` do not collect: pyproject's testpaths is ["tests"]); `pip check` first: spatialrl[verl]
# and verl 0.9.1's pins hold together.
test-verl: $(VERL_STAMP)
	$(VERL_PY) -m pip check
	$(VERL_PY) -m pytest -q tests_verl

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
	rm -rf $(VENV) $(VERL_VENV) build *.egg-info .pytest_cache
