# Two commands: `make run` (set up and start the app on SQLite with the timer scheduler) and
# `make test` (set up and run the whole suite). Everything else is a step of those two.
VENV   ?= .venv
PY     := $(VENV)/bin/python
FLASK  := $(VENV)/bin/flask
export FLASK_APP := wsgi.py
PORT   ?= 5000

.PHONY: run test setup translations vendor migrate deploy check benchmark clean

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

# The web UI's Chinese catalog: the .po is committed, the .mo is built here.
translations: setup
	$(VENV)/bin/pybabel -q compile -d app/translations -f

# bpmn-js (the diagram viewer), dmn-js (the decision-table viewer), swagger-ui-dist (the API reference
# page) and echarts (the analysis page's charts: the common build, bars, lines and pies) from npm, pinned by package-lock.json, served from app/static/vendor/ (gitignored; nothing is
# loaded from a CDN).
# npm ci runs again when the lock file changes; --ignore-scripts: only files are copied, nothing runs
# (swagger-ui-dist pulls in @scarf/scarf, whose postinstall would phone home).
VENDOR := app/static/vendor/bpmn-js
DMN_VENDOR := app/static/vendor/dmn-js
SWAGGER := app/static/vendor/swagger-ui
ECHARTS := app/static/vendor/echarts
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "make vendor: npm is missing (Debian: apt-get install -y npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(VENDOR)/.copied: node_modules/.installed
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)
	cp node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js node_modules/bpmn-js/LICENSE $(VENDOR)/
	cp -R node_modules/bpmn-js/dist/assets $(VENDOR)/assets
	touch $@

$(DMN_VENDOR)/.copied: node_modules/.installed
	rm -rf $(DMN_VENDOR) && mkdir -p $(DMN_VENDOR)
	cp node_modules/dmn-js/dist/dmn-viewer.production.min.js node_modules/dmn-js/LICENSE $(DMN_VENDOR)/
	cp -R node_modules/dmn-js/dist/assets $(DMN_VENDOR)/assets
	touch $@

$(SWAGGER)/.copied: node_modules/.installed
	rm -rf $(SWAGGER) && mkdir -p $(SWAGGER)
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
	   node_modules/swagger-ui-dist/LICENSE node_modules/swagger-ui-dist/NOTICE $(SWAGGER)/
	touch $@

$(ECHARTS)/.copied: node_modules/.installed
	rm -rf $(ECHARTS) && mkdir -p $(ECHARTS)
	cp node_modules/echarts/dist/echarts.common.min.js node_modules/echarts/LICENSE node_modules/echarts/NOTICE $(ECHARTS)/
	touch $@

vendor: $(VENDOR)/.copied $(DMN_VENDOR)/.copied $(SWAGGER)/.copied $(ECHARTS)/.copied

# The flask commands below work on the development setup (SQLite in instance/, a local secret):
# APP_ENV=development, as scripts/run-dev.sh sets for the server, so that they start without the
# PUBLIC_BASE_URL a server must set (see README).
instance/dev-secret:
	mkdir -p instance
	$(PY) -c "import secrets; print(secrets.token_hex(32))" > $@

migrate: setup instance/dev-secret
	APP_ENV=development SECRET_KEY=$$(cat instance/dev-secret) DEPLOY_ON_START=0 $(FLASK) db upgrade

deploy: migrate
	APP_ENV=development SECRET_KEY=$$(cat instance/dev-secret) DEPLOY_ON_START=0 $(FLASK) processes deploy --by setup

check: setup
	APP_ENV=development SECRET_KEY=check DEPLOY_ON_START=0 $(FLASK) processes check

run: deploy translations vendor
	@APP_ENV=development SECRET_KEY=$$(cat instance/dev-secret) DEPLOY_ON_START=0 $(FLASK) users demo
	SECRET_KEY=$$(cat instance/dev-secret) scripts/run-dev.sh $(PORT)

test: setup translations vendor
	scripts/ensure-browser.sh
	scripts/ensure-deploy-tools.sh
	$(PY) -m pytest -q -n auto --maxprocesses 4 --dist worksteal

benchmark: setup
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) instance .pytest_cache
