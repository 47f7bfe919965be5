# nook — rootless containers. `make help` lists the targets.
GO        ?= go
BUILDTAGS ?= containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_zfs
GOFLAGS_BUILD = -trimpath -tags "$(BUILDTAGS)"
BIN       := bin
# nook-idle (monitor/idle/idle.c), nook-pause (userns/pause/pause.c) and nook-init
# (runtime/nookinit/init.c) are freestanding: no libc,
# their own _start and system calls (internal/freestanding/sys.h).
IDLE_CFLAGS = -Iinternal/freestanding -Os -static -nostdlib -ffreestanding -fno-stack-protector -fno-asynchronous-unwind-tables -fno-pie -no-pie -Wall -Wextra -s

.PHONY: all build test test-unit test-e2e fuzz bench demo vet clean help

all: build

help:
	@echo "build      bin/nook, bin/nook-engine, bin/nook-engine-lean, bin/nook-runtime, bin/nook-idle, bin/nook-pause and bin/nook-init (needs gcc and libc6-dev)"
	@echo "test       unit tests, then the end-to-end suite as an unprivileged user"
	@echo "test-unit  go test of the pure packages"
	@echo "test-e2e   the end-to-end suite only (test/run-e2e.sh)"
	@echo "fuzz       a short fuzzing run of every parser"
	@echo "bench      start-latency and other benchmarks, as ratios against references"
	@echo "demo       set up (as root: a demo user) and run a container"

# Every binary is built with -s -w: no symbol table or DWARF (stack traces keep their names);
# the engine starts about 2 ms sooner on every command without them.
# Every Go binary but the full engine is static (CGO_ENABLED=0): it starts 1-3 ms sooner so.
# bin/nook-engine (the image commands) is built with cgo, for containers/image's lasting
# blob-info cache (go-sqlite3); what the static lean engine's packages with a cgo form do
# without it: docs/dependencies.md (cmd/nook-engine/cgo_test.go).
# bin/nook-engine-lean is the same engine without containers/image and buildkit (tag nook_lean):
# the container commands, 7 ms sooner (docs/decisions.md, "The binaries").
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/nook ./cmd/nook
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -ldflags "-s -w" -o $(BIN)/nook-engine ./cmd/nook-engine
	CGO_ENABLED=0 $(GO) build -trimpath -tags "$(BUILDTAGS) nook_lean" -ldflags "-s -w" -o $(BIN)/nook-engine-lean ./cmd/nook-engine
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/nook-runtime ./cmd/nook-runtime
	$(CC) $(IDLE_CFLAGS) -o $(BIN)/nook-idle monitor/idle/idle.c
	$(CC) $(IDLE_CFLAGS) -o $(BIN)/nook-pause userns/pause/pause.c
	$(CC) $(IDLE_CFLAGS) -o $(BIN)/nook-init runtime/nookinit/init.c

vet:
	$(GO) vet -tags "$(BUILDTAGS)" ./...
	$(GO) vet -tags "$(BUILDTAGS) nook_lean" ./cmd/nook-engine ./engine

test-unit:
	$(GO) test -tags "$(BUILDTAGS)" -count=1 $$($(GO) list ./... | grep -v /test/)
	$(GO) test -tags "$(BUILDTAGS) nook_lean" -count=1 ./cmd/nook-engine ./engine

test-e2e: build
	bash test/run-e2e.sh

test: test-unit test-e2e

fuzz:
	bash test/fuzz.sh

bench: build
	bash bench/run.sh

demo:
	bash test/demo.sh

clean:
	rm -rf $(BIN)
