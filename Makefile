# The two commands a newcomer needs:
#   make run    set up everything that is missing, then start the bot and chat with it
#   make test   set up everything that is missing, then run the whole test suite
VENV      ?= .venv
PY        := $(VENV)/bin/python
HELPLINE  := $(VENV)/bin/helpline
STAMP     := $(VENV)/.installed
MODEL     := models/helpline.tar.gz

.PHONY: run test setup model validate kb-check eval bench bench-gateway bench-queue bench-stats bench-broadcast bench-load catalogs clean

run: model
	$(HELPLINE) run

test: model validate kb-check
	$(VENV)/bin/pytest -q

setup: $(STAMP)
	@$(VENV)/bin/pybabel compile -d locale >/dev/null

$(STAMP): pyproject.toml constraints.txt
	@py=$$(scripts/find-python310.sh) || exit 1; \
	 [ -x $(PY) ] || { echo "creating $(VENV) with $$py"; $$py -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade "pip<25"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	$(PY) -m pip check
	@touch $(STAMP)

# Trains only when the model is missing or older than its data (helpline train --if-stale).
model: setup
	$(HELPLINE) train --if-stale

validate: setup
	TF_CPP_MIN_LOG_LEVEL=3 $(PY) -m bot.validate

# The knowledge base: fails only when a reply states an expired, future or unknown fact.
kb-check: setup
	$(HELPLINE) kb check --quiet --no-db

eval: model
	$(HELPLINE) eval

bench: model
	$(PY) bench/nlu.py

# Gateway latency/throughput/reliability (about 20 minutes; run on an idle machine).
bench-gateway: model
	$(PY) bench/gateway.py

# Counsellors' queue: danger message -> console latency, 20 counsellors racing for 1,000 cases
# (about 4 minutes; needs the PostgreSQL server of HELPLINE_TEST_POSTGRES_URL).
bench-queue: setup
	$(PY) bench/queue.py

# Statistics: the yearly report and the console's statistics page on 1,000,000 synthetic episodes,
# SQLite and PostgreSQL (about 4 minutes).
bench-stats: setup
	$(PY) bench/stats.py

# Campaign broadcasts: plan 100,000 subscribers, send them at a fake Twilio limited to 100/s while
# people write in, kill the worker 3 times (about 20 minutes).
bench-broadcast: setup
	$(PY) bench/broadcast.py

# Scale-out: the single-process default against PostgreSQL + Redis + 2 Rasa + 2 action servers +
# 2 gunicorn processes + 2 workers, then one Rasa killed and restarted under load (about 12 minutes).
bench-load: model
	$(PY) bench/load.py

# Refresh the Babel catalogs after changing marked strings, then translate locale/vi.
catalogs: setup
	$(VENV)/bin/pybabel extract -F babel.cfg -k _ -k _l --no-location --sort-output -w 100 -o locale/messages.pot .
	$(VENV)/bin/pybabel update -i locale/messages.pot -d locale -w 100 --ignore-obsolete
	$(VENV)/bin/pybabel compile -d locale

clean:
	rm -rf models/*.tar.gz reports var .pytest_cache
