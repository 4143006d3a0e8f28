# The two commands of the README: `make demo` runs Freshet locally on the
# embedded default store; `make test` runs every test. Both install what they
# need into .tools/ first and skip what is already there. `make help` lists
# every target; each part's tests also run alone (`make test-edge`, ...).
PARTS := $(patsubst scripts/test-%.sh,%,$(filter-out scripts/test.sh,$(wildcard scripts/test-*.sh)))
.PHONY: help demo test bench fmt fuzz lint screenshot $(addprefix test-,$(PARTS))

help: ## this list
	@awk -F':.*## ' '/^[a-z-]+:.*## / { printf "  make %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo "  make test-PART      one part's tests alone: $(PARTS)"
	@for p in $(PARTS); do printf '    %-12s %s\n' "$$p" "$$(sed -n 's/^# make help: //p' scripts/test-$$p.sh)"; done

demo: ## Freshet on this machine: the edge, the shop, the ranker (README "Try it")
	@bash scripts/demo.sh

test: ## every lint and test, as CI runs it; ends with the time each step took
	@bash scripts/test.sh

bench: ## every benchmark (BENCHMARKS.md)
	@bash scripts/bench.sh

fmt: ## format the Rust workspace
	cargo fmt --all

fuzz: ## fuzz the receive path for FUZZ_SECONDS (60) with cargo-fuzz (nightly)
	@bash scripts/fuzz.sh

lint: ## rustfmt, clippy, ruff, mypy, shellcheck, eslint
	@bash scripts/lint.sh

$(addprefix test-,$(PARTS)): test-%:
	@bash scripts/test-$*.sh

# The README's pictures of the shop (docs/shop.png, docs/recommended.png), taken by the end-to-end
# test on request; `make test` never writes tracked files.
screenshot: ## retake the README's pictures of the shop
	@E2E_STORES=durable-object FRESHET_SCREENSHOT=$(CURDIR)/docs/shop.png bash scripts/test-e2e.sh
