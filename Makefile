# Two entry points do all set-up on a fresh Debian machine: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
APT_PKGS := fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small \
            libportaudio2 jackd2 libsndfile1 xvfb \
            libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 fonts-dejavu-core \
            libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
            libxcb-xkb1 libxcb-randr0 pipewire pipewire-bin pipewire-jack wireplumber dbus-daemon
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint system-deps setup bundle

system-deps:
	@dpkg -s $(APT_PKGS) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS); }

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[train,test]' 'torch==2.13.0'
	touch $@

setup: system-deps $(BIN)/.installed

demo: setup
	$(BIN)/gansynth-live demo -o demo.wav

# The house rules, checked: the import layers (pyproject.toml, docs/architecture.md), ruff, mypy; then the tests.
lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check synth gui tests packaging
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

# The desktop bundle (dist/gansynth-live/): plays and renders without Python installed.
bundle: setup
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/gansynth-live.spec
