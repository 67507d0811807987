# The two entry points a user needs: `make run` and `make test`. Each installs what is missing first.
.PHONY: bootstrap run down status test lint unit

bootstrap:
	@scripts/bootstrap

run: bootstrap
	.venv/bin/solar-platform up

down:
	.venv/bin/solar-platform down

status:
	.venv/bin/solar-platform stack status

lint: bootstrap
	.venv/bin/ruff check .

unit: bootstrap
	.venv/bin/pytest -m "not integration"

# Integration tests start MariaDB and Kafka themselves when they are not running, and stop
# what they started.
test: lint
	.venv/bin/pytest
