# madoguchi: `make run` starts the app, `make test` runs every check.
# Both create or refresh .venv themselves (quick when nothing changed).

PYTHON ?= python3
VECTORS := var/word_vectors/vectors.npy
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest eval bench bench-bot browser venv vectors clean

venv: $(STAMP) $(VECTORS)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "madoguchi needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	@touch $(STAMP)

# Word vectors for the FAQ engine (chiVe from the ja_ginza wheel on PyPI, about 60 MB to
# download once, 17 MB kept): built at install time, by every target that installs (the
# tests do not use them, but a checkout made with `make test` then ranks as deployed), never
# by the running app. Without them (offline install) the engine works as before; `make
# vectors` tries again.
$(VECTORS): | $(STAMP)
	@$(BIN)/madoguchi faq vectors || echo "make: no word vectors now (run 'make vectors' later); the FAQ engine works without them"

vectors: $(STAMP)
	$(BIN)/madoguchi faq vectors

run: $(STAMP) $(VECTORS)
	$(BIN)/madoguchi run

test: $(VECTORS) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

eval: $(STAMP) $(VECTORS)
	$(BIN)/madoguchi faq evaluate --faq faq/data/curated_faq.jsonl --queries eval/dev_queries.jsonl

bench: $(STAMP) $(VECTORS)
	$(BIN)/madoguchi faq bench

bench-bot: $(STAMP)
	$(BIN)/madoguchi bench bot
	$(BIN)/madoguchi bench bot --workers 2

# Debian's Chromium and the Japanese and emoji fonts for the browser test (screenshots of the
# demo chat; without the fonts every Japanese character renders as an empty box). Skips when
# they are installed; uses sudo only when not root. Never `playwright install`.
BROWSER_PACKAGES := chromium fonts-noto-cjk fonts-noto-color-emoji
BROWSER_FILES := /usr/bin/chromium /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc \
	/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

browser:
	@missing=0; for f in $(BROWSER_FILES); do test -e $$f || missing=1; done; \
	if [ $$missing = 0 ]; then echo "browser: chromium and fonts are installed"; else \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(BROWSER_PACKAGES); \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
