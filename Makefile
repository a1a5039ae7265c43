# credagent: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/credagent/credagent/agent/version.Version=$(VERSION)
GOFLAGS_STATIC := CGO_ENABLED=0
CMDS      := credagent credseal fakeccp

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build all binaries into bin/ (static)
	@mkdir -p $(BIN)
	$(GOFLAGS_STATIC) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./agent/cmd/...

.PHONY: test
test: ## the whole test suite, with -race (installs test prerequisites when root)
	./scripts/test.sh

.PHONY: test-windows
test-windows: ## the Windows build under Wine 10: test binaries, dev e2e, service, MSI (root)
	./scripts/test-windows.sh

.PHONY: race
race: ## unit tests with the race detector, without the extra suites
	$(GO) test -race -count=1 ./...

.PHONY: vet
vet: ## go vet for Linux and Windows
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...

.PHONY: windows
windows: ## build and vet everything for GOOS=windows
	GOOS=windows $(GO) build ./...
	GOOS=windows $(GO) vet ./...
	@mkdir -p $(BIN)/windows
	GOOS=windows $(GOFLAGS_STATIC) $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/windows/ ./agent/cmd/...

.PHONY: lint
lint: vet ## gofmt check, go vet, and package-doc check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: demo
demo: build ## run the whole product end to end on the embedded dev defaults
	./scripts/demo.sh

.PHONY: fuzz
fuzz: ## a short run of every fuzz target
	./scripts/fuzz.sh

.PHONY: bench
bench: build ## the benchmark harness; writes bench/results.json
	./scripts/bench.sh

.PHONY: e2e
e2e: build ## end to end in Docker containers, then the 60 s soak
	./scripts/e2e.sh
	./scripts/soak.sh --ci

.PHONY: soak
soak: build ## a month of a machine's life in 10 min (SOAK=30m for longer); writes bench/soak.json
	./scripts/soak.sh

.PHONY: fleet
fleet: build ## the feed on nginx with 100 agents (not in make test); merges figures into bench/results.json
	./scripts/fleet.sh

.PHONY: fakeccp-image
fakeccp-image: build ## the fake CCP as a FROM scratch Docker image
	docker build -f installer/docker/fakeccp.Dockerfile -t credagent/fakeccp:dev .

.PHONY: package
package: build ## .deb, .rpm and .msi packages into dist/
	./scripts/package.sh

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN) dist
