# minivlm: every target creates .venv and installs the project into it when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

.PHONY: install test lint unit notebooks lowest book book-check lab bench capstone clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,book]'
	touch $(STAMP)

# the main job: pretrain on alt-text, then caption (cpu preset, about 10 minutes on 2 cores)
capstone: $(STAMP)
	$(PY) -m minivlm capstone --preset cpu

# all tests: lint, unit tests, then every chapter notebook under strict nbval
test: $(STAMP)
	$(VENV)/bin/ruff check minivlm tests bench book/_ext book/diagrams.py book/diagrams_vqa.py book/diagrams_llava.py
	$(VENV)/bin/ruff format --check minivlm tests bench book/_ext book/diagrams.py book/diagrams_vqa.py book/diagrams_llava.py
	$(PY) -m pytest tests notebooks --ignore=tests/browser $(NBVAL)

lint: $(STAMP)
	$(VENV)/bin/ruff check minivlm tests bench book/_ext book/diagrams.py book/diagrams_vqa.py book/diagrams_llava.py
	$(VENV)/bin/ruff format --check minivlm tests bench book/_ext book/diagrams.py book/diagrams_vqa.py book/diagrams_llava.py

unit: $(STAMP)
	$(PY) -m pytest tests --ignore=tests/browser

notebooks: $(STAMP)
	$(PY) -m pytest notebooks $(NBVAL)

# the lower bounds of pyproject.toml hold: a venv of its own with every direct dependency (and the
# dev extra) at its oldest declared version, then lint, the unit tests and two chapter notebooks.
# The venv is made anew whenever the bounds change, so nothing from an earlier set lingers.
LOWEST := .venv-lowest
LOWEST_PY := $(LOWEST)/bin/python
LOWEST_STAMP := $(LOWEST)/.installed
LOWEST_NOTEBOOKS := notebooks/02_self_attention.ipynb notebooks/03_transformer.ipynb

$(LOWEST_STAMP): pyproject.toml constraints-lowest.txt
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST_PY) -m pip install --quiet --upgrade pip
	$(LOWEST_PY) -m pip install --quiet -c constraints-lowest.txt -e '.[dev]'
	$(LOWEST_PY) -m pip check
	touch $(LOWEST_STAMP)

lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/ruff check minivlm tests bench book/_ext book/diagrams.py book/diagrams_vqa.py book/diagrams_llava.py
	$(LOWEST)/bin/ruff format --check minivlm tests bench book/_ext book/diagrams.py book/diagrams_vqa.py book/diagrams_llava.py
	$(LOWEST_PY) -m pytest tests $(LOWEST_NOTEBOOKS) --ignore=tests/browser $(NBVAL)

# the site is built from notebooks/ as committed (outputs included, nothing re-executed)
book: $(STAMP)
	rm -rf book/notebooks && mkdir -p book/notebooks
	cp notebooks/*.ipynb book/notebooks/
	cp -r notebooks/figures book/notebooks/
	$(VENV)/bin/jupyter-book build book -W -n --keep-going

# the site in a real browser (Debian's chromium), then the JupyterLab walkthrough
book-check: book
	$(PY) -m pytest tests/browser -p no:cacheprovider

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)
	$(PY) bench/data.py
	$(PY) bench/attention.py
	$(PY) bench/parity.py
	$(PY) bench/decode.py
	$(PY) bench/fusion.py
	$(PY) bench/capstone.py
	$(PY) bench/pretrain_probe.py
	$(PY) bench/compile.py
	$(PY) bench/resume.py
	$(PY) bench/throughput.py
	$(PY) bench/chapters.py
	$(PY) bench/report.py

clean:
	rm -rf $(VENV) $(LOWEST) book/_build .pytest_cache .ruff_cache .hypothesis runs
