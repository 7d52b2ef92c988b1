# `make install` builds .venv from nothing; `make test` and `make demo` install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
POOL := data/demo_pool
SOUND_EVENTS := data/sound_events

.PHONY: install test demo clean sound-sources sound-events

install: $(VENV)/.installed

$(VENV)/.installed: setup.py requirements.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip==24.3.1" "setuptools==75.6.0" "wheel==0.45.1"
	$(PIP) install "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install "cython==3.0.11" "numpy==1.26.4"
	$(PIP) install --no-deps --no-build-isolation "fairseq-fixed==0.12.3.1"
	$(PIP) install -r requirements.txt $(if $(wildcard constraints.txt),-c constraints.txt)
	$(PIP) install --no-deps -e ".[test]"
	$(PIP) install "pytest==8.3.4" "pytest-xdist==3.8.0" "execnet==2.1.1" "loguru==0.7.3"
	$(PIP) install "import-linter==2.17" "grimp==3.20"  # the floors of docs/ARCHITECTURE.md, checked by the tests
	$(PIP) install --no-deps "xares==0.1.3"  # its checker, for the tests; its full install pulls torchaudio (another torch)
	$(PIP) install --no-deps "pyfluidsynth==1.4.0"  # renders the soundfonts of make sound-events (ctypes, no deps)
	$(PY) -c "import fairseq, supmam_plugin, timm, soundfile, soxr, sklearn; print('supmam-plugin installed')"
	touch $@

# Two processes (pytest-xdist; -n auto takes every core), each test file kept in one process so its
# module fixtures are made once; the 15 slowest tests are listed at the end.
TEST_WORKERS ?= auto
test: install sound-sources
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 tests

# The method at its best on real recorded sound events (make sound-events), in the paper's information
# setting (every pretraining clip labelled, as AudioSet-2M is): a CLAP teacher made by LAION-CLAP's recipe
# (an AudioMAE pretraining, then a classifier on every label, then a CLAP from it on the captions and
# captions made from the labels), SupMAM-CLAP pretrained with its targets, fine-tuned beside a model from
# scratch; one line: held-out mAP beside the MFCC baseline, the classifier from scratch on every label and
# the teacher's own scores (docs/demo.md). Two runs at a time, one thread each; sizes cut to fit 20 minutes
# on 2 cores; the study at the full budget is scripts/claims_study.py (RESULTS.md).
# DEMO=spoken-words: the spoken-word demo (espeak-ng) instead.
DEMO ?= sound-events
DEMO_SIZES := --mae-updates 1000 --classifier-updates 2000 --teacher-updates 300 --pretrain-updates 800 \
	--finetune-updates 800 --validate-interval 4
ifeq ($(DEMO),spoken-words)
demo: install $(POOL)/pretrain.tsv
	$(VENV)/bin/supmam-demo --pretrain-data $(POOL) --out demo_output
else
demo: install $(SOUND_EVENTS)/pretrain.tsv
	$(VENV)/bin/supmam-demo --data $(SOUND_EVENTS) --pretrain-data $(SOUND_EVENTS) --methods supmam_clap \
		--setting labelled-pool --teacher-recipe laion-clap --teacher-start audiomae $(DEMO_SIZES) --out demo_output
endif

# The unlabelled pretraining pool (3000 clips, 52 MB, about a minute): only the demo needs it and
# espeak-ng, so only this target installs espeak-ng (Debian/Ubuntu; as root, or with sudo).
$(POOL)/pretrain.tsv: scripts/make_demo_data.py | install
	command -v espeak-ng >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q espeak-ng; }
	$(PY) scripts/make_demo_data.py --pool-dir $(POOL)

# Real recorded sound events, multi-label, with captions (a miniature AudioSet; scripts/make_sound_events.py
# says what and how): the recordings come from Debian packages, which only this target and the tests
# (the generator is tested on a tiny size) install. 12,500 clips, 513 MB, about 70 s.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
sound-sources: install
	dpkg -s $$($(PY) scripts/make_sound_events.py --debian-packages) >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q --no-install-recommends $$($(PY) scripts/make_sound_events.py --debian-packages); }

sound-events: $(SOUND_EVENTS)/pretrain.tsv
$(SOUND_EVENTS)/pretrain.tsv: scripts/make_sound_events.py | sound-sources
	$(PY) scripts/make_sound_events.py --out-dir $(SOUND_EVENTS)

clean:
	rm -rf $(VENV)
