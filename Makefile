# Two commands do all set-up on a fresh clone:
#   make run    creates .venv if needed and runs `oligolab check` on the bundled assays and genomes
#   make test   creates .venv if needed, installs the system tools the tests compare against, runs the tests
#   make serve  starts the lab web service on SQLite with training accounts (http://127.0.0.1:8000/)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint format bench venv design serve fuzz translations

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/oligolab check --assays data/sars-cov-2/assays/diagnostic-rt-pcr-assays.csv \
		--assays data/sars-cov-2/assays/artic-v5.3.2.primer.bed \
		--genomes data/sars-cov-2/pango-consensus-genomes.fasta.zst \
		--reference data/sars-cov-2/NC_045512.2.fasta --annotation data/sars-cov-2/reference-annotation.gb \
		--alias-key data/sars-cov-2/pango-alias-key.json \
		--off-target data/coronavirus-neighbours/human-coronavirus-references.fasta \
		--out out/check
	@echo "report: out/check/report.html"

test: $(STAMP) lint
	scripts/install-system-tools.sh
	$(BIN)/python -m pytest -q

# the edit loop: unit tests only (no browser, no PostgreSQL or database faults, no slow real-data runs), few
# examples per property-based test; 42 s of CPU (under a minute on an idle 2-core machine)
test-fast: $(STAMP)
	HYPOTHESIS_PROFILE=fast $(BIN)/python -m pytest -q -m "not slow and not browser and not db" -p no:cacheprovider

# ruff's format check and lint rules, and mypy, configured in pyproject.toml ([tool.ruff], [tool.mypy]); `make test` runs this first
lint: $(STAMP)
	$(BIN)/ruff format --check src
	$(BIN)/ruff check src
	$(BIN)/mypy

# rewrite the code in ruff's format (line length 120, pyproject.toml)
format: $(STAMP)
	$(BIN)/ruff check --select I --fix src
	$(BIN)/ruff format src

# every reader under property-based fuzzing for longer than CI does (FUZZ_EXAMPLES examples per reader test);
# prints examples and time per test; any exception other than the project's InputError fails it
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m fuzz --hypothesis-show-statistics -p no:cacheprovider

# every benchmark in a bounded form (benchmarks/run_all.py --full: the runs recorded in benchmarks/RESULTS.md);
# locust (the 'bench' extra) for the service load runs, skipped with a message where it cannot be installed
bench: $(STAMP)
	scripts/install-system-tools.sh
	$(BIN)/python -m pip install --quiet -e '.[bench]' || echo "no locust: the serve and day benchmarks are skipped"
	$(BIN)/python benchmarks/run_all.py

design: $(STAMP)
	$(BIN)/oligolab design --genomes data/sars-cov-2/pango-consensus-genomes.fasta.zst \
		--enzyme LbCas12a --amplification lamp \
		--reference data/sars-cov-2/NC_045512.2.fasta --annotation data/sars-cov-2/reference-annotation.gb \
		--alias-key data/sars-cov-2/pango-alias-key.json \
		--off-target data/coronavirus-neighbours/human-coronavirus-references.fasta \
		--out out/design
	@echo "report: out/design/report.html"

serve: $(STAMP)
	$(BIN)/oligolab serve --db sqlite:///oligolab-lab.db --demo

# translations (Babel): extract the strings of the service's code, templates and shipped rule sets (babel.cfg),
# merge them into every catalogue (src/oligolab/service/locale/<lang>/LC_MESSAGES/messages.po), compile the .mo
# files (committed, so a fresh clone needs no build step); tests/test_day_i18n.py fails on any string left
# untranslated or fuzzy
LOCALE := src/oligolab/service/locale
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --project oligolab -o $(LOCALE)/messages.pot .
	$(BIN)/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) --no-fuzzy-matching --ignore-obsolete --width 116
	$(BIN)/pybabel compile -d $(LOCALE) --statistics
