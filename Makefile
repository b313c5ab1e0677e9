VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test test-hosts lint install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/dpip up --host 127.0.0.1 --port 8080 --workers 2

test: install
	$(PY) -m pytest -q -m "not hosts"; code=$$?; if [ $$code -eq 5 ]; then exit 0; else exit $$code; fi

test-hosts: install
	$(PY) -m pytest -q -m hosts; code=$$?; if [ $$code -eq 5 ]; then exit 0; else exit $$code; fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
