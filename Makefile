# The two commands a newcomer needs: `make demo` and `make test`.
# Both build a virtualenv in .venv with everything the run needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

venv: $(BIN)/python  ## Create .venv and install the package with its test dependencies
	$(BIN)/python -m pip install --quiet -e '.[test]'

# The demo's database is kept, so the README's next step (agno-storage info/list) can read it.
DB ?= data/agno.db

demo: $(BIN)/python  ## Write sessions of all four modes to $(DB) (default data/agno.db) and print them
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python examples/demo.py $(DB)

test: venv go-work  ## Run the whole test suite with branch coverage
	$(BIN)/python -m pytest --cov --cov-report=term

.PHONY: stress
stress: venv  ## The fault-injection suite at a larger size (several minutes): more rounds of races and kills
	AGNO_STORAGE_STRESS=1 $(BIN)/python -m pytest -q tests/test_faults.py

lint: venv  ## Types, lint and format checks
	$(BIN)/mypy
	$(BIN)/mypy --strict bench devkit
	$(BIN)/ruff check agno_storage tests examples bench devkit
	$(BIN)/ruff format --check agno_storage tests examples bench devkit

.PHONY: fixtures-agno
fixtures-agno:  ## Rewrite fixtures/agno_*.db with real agno 1.8.4, 1.1.17 and 1.1.0
	python fixtures/make_agno_fixtures.py

.PHONY: corpus fixtures-go fixtures-go-check fixtures
corpus:  ## Rewrite fixtures/corpus.json (deterministic)
	python fixtures/make_corpus.py

# Where the Go module proxy refuses agno-golang, an unmodified copy of the
# module may sit in a shared/ folder beside the checkout (or beside its
# parent, or at the machine's /work/shared); AGNO_GOLANG_SRC=DIR names another.
AGNO_GOLANG_SRC ?= $(abspath $(firstword $(wildcard \
	../shared/third_party/agno-golang ../../shared/third_party/agno-golang /work/shared/third_party/agno-golang)))
export AGNO_GOLANG_SRC

.PHONY: go-work
go-work:  ## Make compat/ build against agno-golang v0.1.6 (where the Go proxy refuses it: AGNO_GOLANG_SRC=DIR)
	compat/setup-go-work.sh

fixtures-go: corpus go-work  ## Rewrite fixtures/go_*.db with agno-golang v0.1.6 (compat/cmd/writer)
	cd compat && go run ./cmd/writer -corpus ../fixtures/corpus.json -out ../fixtures

fixtures-go-check: go-work  ## Fail if fixtures/go_*.db differ from a fresh run of the writer
	python fixtures/make_corpus.py --check
	rm -rf .fixtures-go-check && mkdir .fixtures-go-check
	cd compat && go run ./cmd/writer -corpus ../fixtures/corpus.json -out ../.fixtures-go-check
	for f in fixtures/go_*.db .fixtures-go-check/*.db; do f=$$(basename $$f); \
		cmp fixtures/$$f .fixtures-go-check/$$f || exit 1; done
	rm -rf .fixtures-go-check

fixtures: fixtures-go fixtures-agno  ## Rewrite every fixture

.PHONY: fts5-chars
fts5-chars: venv  ## Rewrite agno_storage/fts5_chars.py (the characters that split words) from this SQLite's FTS5 tokenizer
	$(BIN)/python devkit/fts5_chars.py

.PHONY: bench bench-quick bench-search bench-search-pg
bench: $(BIN)/python go-work  ## Full benchmark run (several minutes); rewrites docs/benchmarks.md and docs/benchmarks.png
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --full --out docs/ --json bench/results/full.json

bench-search: $(BIN)/python  ## History and full-text search benchmark (1,000,000 messages; several minutes)
	$(BIN)/python -m bench.search --json bench/results/search.json

bench-search-pg: $(BIN)/python  ## Full-text search on PostgreSQL (1,000,000 messages in a throwaway server; several minutes)
	$(BIN)/python -m bench.search_pg --json bench/results/search_pg.json

.PHONY: bench-web
bench-web: $(BIN)/python  ## agno-storage serve under load: GET /api/v1/sessions?limit=20 on 100,000 sessions, 50 clients for 30 s
	$(BIN)/python -m pip install --quiet -e '.[web]'
	$(BIN)/python -m bench.web

bench-quick: $(BIN)/python go-work  ## Benchmark run with small sizes (a minute or two); writes to bench/quick/
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench --quick --out bench/quick/

.PHONY: bench-ops bench-agno3
bench-ops: $(BIN)/python  ## agno_storage.ops: export, import, copy to PostgreSQL, peak RSS up to 1,000,000 sessions (about 15 minutes, 20 GB of disk); rewrites docs/benchmarks-ops.md
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.ops --full --out docs/ --json bench/results/ops_full.json

bench-agno3: $(BIN)/python  ## to_agno3() against agno 3.1.10's migrate() at 1,000 and 10,000 sessions (makes .venv-agno3 the first time)
	$(BIN)/python -m bench.agno3 --json bench/results/agno3_full.json --md bench/results/agno3_full.md
