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

.PHONY: run test setup seed browser lint bench clean-store

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

seed: setup
	$(PY) -m dashboard seed --db $(DB)

run: seed
	@echo "Recoup is starting at http://$(HOST):$(PORT)  (store: $(DB))"
	RECOUP_DB=$(DB) $(PY) -m dashboard.ui.serve --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# Chromium for the browser journeys, from the system packages (never a browser download).
browser:
	@bash .ci/install-chromium.sh

lint: setup
	$(VENV)/bin/ruff check dashboard pages tests bench app.py

test: setup browser lint
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m bench.run

clean-store:
	@echo "This deletes $(DB) (all loaded data). Type the file name to confirm:"; \
	read answer; [ "$$answer" = "$(DB)" ] && rm -f $(DB) $(DB).wal && echo "deleted $(DB)" || echo "kept $(DB)"
