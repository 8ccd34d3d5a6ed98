# The test command of the project is `make test`; .ci/run calls it.
GO ?= go

.PHONY: build test vet run migrate load

build:
	$(GO) build -o bin/chat ./cmd/chat
	$(GO) build -o bin/chatload ./cmd/chatload

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }

# Tests run against the real MariaDB/MySQL, Redis and RabbitMQ named by the
# CHAT_* variables (defaults: the local services on their standard ports).
test: vet
	$(GO) test -race -count=1 ./...

migrate:
	$(GO) run ./cmd/chat migrate

# Runs API and workers in one process against local services.
run: migrate
	$(GO) run ./cmd/chat all

load:
	$(GO) run ./cmd/chatload -rate 3000 -duration 60s
