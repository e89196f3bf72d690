# amictl — `make demo` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install sysdeps test lint typecheck pytest demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

# System packages some tests need (Debian's chromium for the HTML report's browser test,
# postgresql for the team-state tests). Installed through apt when missing and we are root;
# otherwise those tests are skipped and say why.
sysdeps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt)"; \
	    apt-get update -qq >/dev/null 2>&1 || true; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	      || echo "warning: could not install$$missing: the tests that need them are skipped"; \
	  else \
	    echo "note:$$missing missing (not root or no apt): the tests that need them are skipped"; \
	  fi; \
	fi

# The suite runs on PYTEST_WORKERS processes (2 cores is the budget: under 10 minutes); the
# 25 slowest test phases are listed at the end so a run shows what eats the budget.
PYTEST_WORKERS ?= 2
test: install sysdeps lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

demo: install
	$(BIN)/amictl demo

# Every benchmark (bench/all.py), then one table of the figures and their goals.
bench: install
	$(BIN)/python bench/all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
