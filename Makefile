# CIMS — the two commands of the README are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test venv lint format check audit messages clean bench

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit("CIMS needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Quick start: SQLite under var/, no Redis needed; web + background jobs on http://127.0.0.1:8000
run: venv
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py load_demo
	@echo; echo "CIMS is starting on http://127.0.0.1:8000 (Ctrl-C stops it)"; echo
	DEBUG=true $(PY) manage.py runlocal 127.0.0.1:8000

## The whole suite. SQLite by default; PostgreSQL when DATABASE_URL is set.
test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Security checks (docs/security.md): known vulnerabilities in the pinned requirements (pip-audit, asks
## PyPI; PIP_AUDIT_ARGS=--strict also fails when a package could not be looked up), then bandit over our
## code at medium severity and confidence (accepted findings carry "# nosec BXXX  # reason").
BANDIT_PATHS := accounts cims customers followups complaints reports lottery
audit: venv
	$(VENV)/bin/pip-audit -r requirements.txt $(PIP_AUDIT_ARGS)
	$(VENV)/bin/bandit -q -r $(BANDIT_PATHS) -x '*/migrations/*,*/tests/*' --severity-level medium --confidence-level medium

check: venv
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py check

## Benchmarks on PostgreSQL (not tests; see docs/performance.md): the customer archive on BENCH_DATABASE_URL
## with BENCH_CUSTOMERS customers, then imports of a BENCH_IMPORT_ROWS-row CSV on BENCH_IMPORT_DATABASE_URL
## (ours and a plain django-import-export resource), then the 360 timeline and the pipeline board on
## BENCH_FOLLOWUPS_DATABASE_URL with BENCH_FOLLOWUPS_CUSTOMERS customers and BENCH_FOLLOWUPS_COUNT follow-ups
## (built once, about 6 minutes for 1,000,000 / 5,000,000, then reused; BENCH_FOLLOWUPS_ARGS e.g.
## "--repeat 100 --only pipeline --explain"), then the complaint desk with BENCH_COMPLAINTS_TICKETS tickets on
## BENCH_COMPLAINTS_DATABASE_URL (the follow-ups database by default; BENCH_COMPLAINTS_ARGS likewise),
## then the dashboard and every report on that database (BENCH_REPORTS_DATABASE_URL, BENCH_REPORTS_ARGS).
## Each prints a Markdown table.
bench: venv
	DATABASE_URL="$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench}" \
	  $(PY) manage.py bench_customers --customers "$${BENCH_CUSTOMERS:-100000}" $(BENCH_ARGS)
	DATABASE_URL="$${BENCH_IMPORT_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench_import}" \
	  $(PY) manage.py bench_import --rows "$${BENCH_IMPORT_ROWS:-100000}" $(BENCH_IMPORT_ARGS)
	DATABASE_URL="$${BENCH_FOLLOWUPS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench_followups}" \
	  $(PY) manage.py bench_followups --customers "$${BENCH_FOLLOWUPS_CUSTOMERS:-1000000}" \
	  --followups "$${BENCH_FOLLOWUPS_COUNT:-5000000}" $(BENCH_FOLLOWUPS_ARGS)
	DATABASE_URL="$${BENCH_COMPLAINTS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench_followups}" \
	  $(PY) manage.py bench_complaints --tickets "$${BENCH_COMPLAINTS_TICKETS:-500000}" $(BENCH_COMPLAINTS_ARGS)
	DATABASE_URL="$${BENCH_REPORTS_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench_followups}" \
	  $(PY) manage.py bench_reports $(BENCH_REPORTS_ARGS)
	DATABASE_URL="$${BENCH_LOTTERY_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench_lottery}" \
	  $(PY) manage.py bench_lottery $(BENCH_LOTTERY_ARGS)
	DATABASE_URL="$${BENCH_AUDIT_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cims_bench_audit}" \
	  $(PY) manage.py bench_audit --rows "$${BENCH_AUDIT_ROWS:-1000000}" $(BENCH_AUDIT_ARGS)

## Recompile translations after editing locale/*/LC_MESSAGES/django.po (needs GNU gettext).
messages: venv
	$(PY) manage.py makemessages -l zh_Hans --ignore=.venv --ignore=var --no-obsolete
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
