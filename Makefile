# Two commands do all the set-up:  `make app` (install + launch) and `make test` (install + test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: app test test-all bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-offline.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-offline.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@# the browser test drives Debian's chromium (no Playwright browser download); skipped where absent
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
		echo "note: /usr/bin/chromium missing (apt-get install chromium): the browser test will be skipped"
	touch $@

app: $(VENV)/.installed
	$(BIN)/python app.py

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test-all: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/eval.py
	$(BIN)/python bench/grpo.py

clean:
	rm -rf $(VENV) .pytest_cache
