# Nezuko: `make run` starts everything on the embedded default; `make test` runs the suite.
# Both create the virtual environment from the lock file on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test test-postgres messages browser promtool demo lock lint clean

$(INSTALLED): requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	touch $@

# A first start writes .env with fresh secrets; later starts keep it.
.env: | $(INSTALLED)
	$(BIN)/python -m nezuko.dotenv > .env
	@echo "Wrote .env with a new SECRET_KEY and encryption key."

# Every active bot and the web application, in one process (nezuko/management/commands/runbot.py,
# composed by nezuko/runtime.py).
run: $(INSTALLED) .env messages
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runbot --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

test: $(INSTALLED) browser promtool messages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The translations: locale/<code>/LC_MESSAGES/django.po compiled to .mo (not committed;
# up-to-date ones are skipped). msgfmt is Debian's gettext, installed here when missing.
# No settings needed: compilemessages finds locale/ from here (the venv is not ours).
messages: $(INSTALLED)
	bash scripts/install-gettext.sh
	$(BIN)/django-admin compilemessages --ignore=$(VENV) --ignore=node_modules -v0

# The browser tests drive Debian's chromium (installed here when missing; never a download).
browser:
	bash scripts/install-chromium.sh

# tests/test_monitoring.py checks and unit-tests ops/prometheus/alerts.yml with promtool
# (Debian's prometheus package, installed here when missing).
promtool:
	bash scripts/install-promtool.sh

# Nezuko against the Bot API emulator with a busy community; prints the URL and how to log in.
demo: $(INSTALLED)
	$(BIN)/python scripts/demo.py --port $${PORT:-8000}

# The same suite against the PostgreSQL and Redis on this machine.
test-postgres: $(INSTALLED) browser promtool messages
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Re-pin every dependency after editing pyproject.toml.
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -q -o requirements/base.lock
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -q -o requirements/dev.lock

lint: $(INSTALLED)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
