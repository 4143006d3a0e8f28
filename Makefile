# The two commands of the README: `make demo` runs Freshet locally on the
# embedded default store; `make test` runs every test. Both install what they
# need into .tools/ first and skip what is already there.
.PHONY: demo test bench fmt lint screenshot

demo:
	@bash scripts/demo.sh

test:
	@bash scripts/test.sh

bench:
	@bash scripts/bench.sh

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The README's pictures of the shop (docs/shop.png, docs/recommended.png), taken by the end-to-end
# test on request; `make test` never writes tracked files.
screenshot:
	@E2E_STORES=durable-object FRESHET_SCREENSHOT=$(CURDIR)/docs/shop.png bash scripts/test-e2e.sh
