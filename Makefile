# The test command of the project is `make test`; .ci/run calls it.
GO ?= go

.PHONY: build services test test-fast scale-test vet run migrate load bench lint-openapi newman

build:
	$(GO) build -o bin/chat ./cmd/chat
	$(GO) build -o bin/chatload ./cmd/chatload

vet:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# Starts MariaDB, Redis and RabbitMQ on their local ports when they are
# installed and down, and says how to install those that are missing
# (scripts/services.sh); a service that already answers is left as it is.
services:
	scripts/services.sh

# Tests run against the real MariaDB/MySQL, Redis and RabbitMQ named by the
# CHAT_* variables (defaults: the local services on their standard ports),
# and against the Elasticsearch at CHAT_ELASTICSEARCH_URL; when that is not
# set, the ZincSearch stand-in (tools/zincsearch) is built and started.
ZINC_DIR ?= $(CURDIR)/bin/zinc
test: services vet
	export CHAT_ELASTICSEARCH_URL=$${CHAT_ELASTICSEARCH_URL:-$$(tools/zincsearch/start.sh $(ZINC_DIR))} && \
	echo "search engine: $$CHAT_ELASTICSEARCH_URL" && \
	$(GO) test -race -count=1 -timeout 20m ./...
	scripts/openapi-lint.sh
	CHAT_ELASTICSEARCH_URL=$${CHAT_ELASTICSEARCH_URL:-$$(tools/zincsearch/start.sh $(ZINC_DIR))} scripts/newman.sh

# The fast tier: every test that needs no service (the command handlers and
# the HTTP mapping against in-memory stand-ins among them); tests that need
# one skip under -short. `make test` runs these too, with everything else.
test-fast:
	$(GO) test -short -count=1 ./...

# The scale-out proof on this machine: 16 partitions, three workers, a Redis
# Cluster and a three-node RabbitMQ cluster (started and stopped by the test),
# with a worker killed, one paused past its leases, a Redis failover and a
# broker node lost under load. Also part of `make test`.
scale-test:
	$(GO) test -count=1 -run TestScaleOutUnderFaults -v ./cmd/chat

# Lints api/openapi.yaml with Redocly CLI (installed into .ci/node).
lint-openapi:
	scripts/openapi-lint.sh

# Runs the Postman collection with Newman against a fresh `chat all` on its
# own namespace; NEWMAN_BASE_URL=http://localhost:8080 runs it against a
# server that is already up instead.
newman:
	scripts/newman.sh

migrate:
	$(GO) run ./cmd/chat migrate

# Runs API and workers in one process against local services, with search on
# the Elasticsearch at CHAT_ELASTICSEARCH_URL or 127.0.0.1:9200, else on the
# ZincSearch stand-in, started for the run (scripts/run.sh).
run: services
	GO=$(GO) scripts/run.sh

load:
	$(GO) run ./cmd/chatload -rate 3000 -duration 60s

# End to end on this machine: `chat all` on a namespace of its own (search
# off), 64 closed-loop clients on one chat for 20 s, a probe timing 201 to
# readable, and each server process's CPU per create (scripts/bench.sh; its
# arguments, as BENCH_ARGS, are chatload's).
bench:
	GO=$(GO) scripts/bench.sh $(BENCH_ARGS)
