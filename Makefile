SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
# Extra flags for go test, e.g. GOTESTFLAGS=-race (CI sets it).
GOTESTFLAGS ?=
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Tests print what they measure with t.Logf ("figures: ..."); -v shows it,
# and this filter drops the per-test chatter (failures keep all their lines).
QUIET := grep --line-buffered -vE '^(=== (RUN|PAUSE|CONT|NAME)|\s*--- (PASS|SKIP)|PASS$$)'

.PHONY: test test-race bench lint install-check compose-test demo up down

# -p 1: packages one at a time. The multi-process and fake-Descope tests
# measure utilisation on the wall clock; on a 2-core machine, packages
# running side by side under -race starve each other's processes.
test:
	$(GO) test -p 1 -count=1 -v $(GOTESTFLAGS) ./... 2>&1 | $(QUIET)

test-race:
	$(MAKE) test GOTESTFLAGS=-race

# The side-by-side suite (bench/, its own module, so the peers stay out of
# go.mod): starts its own redis-server and prints the table in the README.
bench:
	cd bench && $(GO) run .

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	cd bench && $(GO) mod tidy -diff
	$(GO) run ./internal/tools/doccheck ./...
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@if command -v docker-compose >/dev/null; then docker-compose config -q && echo "docker-compose.yml: valid"; \
	else echo "docker-compose not installed: docker-compose.yml not checked"; fi

# The README's install lines, tried from an empty module cache against a
# file-based module proxy serving HEAD (the module is not published yet).
install-check:
	bash scripts/install-check

demo:
	$(GO) run ./cmd/ratelimit demo

# Compose v2 (`docker compose`) when the engine has it, else v1.
COMPOSE = $(shell if docker compose version >/dev/null 2>&1; then echo docker compose; else echo docker-compose; fi)

# A Redis for `REDIS_ADDR=localhost:$${REDIS_PORT:-6379} make test`, on
# 127.0.0.1 only; waits until it answers (what v2's --wait does, for v1 too).
up:
	$(COMPOSE) up -d redis
	@for i in $$(seq 30); do \
		[ "$$($(COMPOSE) exec -T redis redis-cli ping 2>/dev/null | tr -d '\r')" = PONG ] && echo "redis: up on 127.0.0.1:$${REDIS_PORT:-6379}" && exit 0; \
		sleep 1; \
	done; echo "redis did not answer" >&2; exit 1

down:
	$(COMPOSE) down

# The project's own docker-compose.yml, run for real and checked (needs a
# Docker engine: ../shared/docker/offline-engine up starts one here).
compose-test:
	bash scripts/compose-test
