# Recoup: two commands on a fresh machine (Python 3.11 and make).
#   make run    set up, seed the embedded store on first run, start the app
#   make test   set up, then lint and the full test suite (browser journeys included)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
HOST   ?= 127.0.0.1
DB     ?= data/recoup.duckdb
STAMP  := $(VENV)/.requirements-installed

.PHONY: run test setup seed browser lint bench clean-store screenshots

# First run on a fresh machine: about 2.5 minutes (the virtualenv and pip install are most of
# it, then ~30 s compiling the forecast kernels while the first page loads); later runs start at once.
$(PY):
	@echo "[1/4] Creating the virtualenv $(VENV) with $(PYTHON) (first run only)..."
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	@echo "[2/4] Installing requirements.txt into $(VENV): about 2 minutes on a fresh machine, once..."
	@$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off --disable-pip-version-check -r requirements.txt \
		| grep -E --line-buffered '^(Collecting|Installing|Successfully)' || true
	@$(PY) -c "import streamlit, polars, duckdb, lightgbm" \
		|| (echo "The install did not finish: run make again, or see pip's messages above." && exit 1)
	touch $(STAMP)
	@echo "      requirements installed."

setup: $(STAMP)

seed: setup
	@echo "[3/4] Seeding $(DB) from sample_data/ (first run only; seconds)..."
	$(PY) -m dashboard seed --db $(DB)

run: seed
	@echo "[4/4] Recoup is starting at http://$(HOST):$(PORT)  (store: $(DB)); the first page compiles the"
	@echo "      forecast kernels in the background (about 30 s, once per machine)."
	RECOUP_DB=$(DB) $(PY) -m dashboard.ui.serve --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# Chromium for the browser journeys, from the system packages (never a browser download).
browser:
	@bash .ci/install-chromium.sh

lint: setup
	$(VENV)/bin/ruff check dashboard pages tests bench app.py

test: setup browser lint
	$(PY) -m pytest -q tests

# Refresh the README's page pictures (docs/screenshots/) from the browser test.
screenshots: setup browser
	RECOUP_SCREENSHOTS_TO_DOCS=1 $(PY) -m pytest -q tests/test_browser_pages.py

bench: setup
	$(PY) -m bench.run

clean-store:
	@echo "This deletes $(DB) (all loaded data). Type the file name to confirm:"; \
	read answer; [ "$$answer" = "$(DB)" ] && rm -f $(DB) $(DB).wal && echo "deleted $(DB)" || echo "kept $(DB)"
