.PHONY: fixtures-agno
fixtures-agno:  ## Rewrite fixtures/agno_*.db with real agno 1.8.4, 1.1.17 and 1.1.0
	python fixtures/make_agno_fixtures.py
