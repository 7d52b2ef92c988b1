# `make install` builds .venv from nothing; `make test` and `make demo` install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip==24.3.1" "setuptools==75.6.0" "wheel==0.45.1"
	$(PIP) install "torch==2.14.1" "torchvision==0.29.1"
	$(PIP) install "cython==3.0.11" "numpy==1.26.4"
	$(PIP) install --no-deps --no-build-isolation "fairseq-fixed==0.12.3.1"
	$(PIP) install -r requirements.txt $(if $(wildcard constraints.txt),-c constraints.txt)
	$(PIP) install --no-deps -e ".[test]"
	$(PIP) install "pytest==8.3.4"
	$(PY) -c "import fairseq, supmam_plugin, timm, soundfile, soxr, sklearn; print('supmam-plugin installed')"
	touch $@

test: install
	$(PY) -m pytest -q tests

# Pretrain (SupMAM, SupMAM-CLAP), fine-tune, score on held-out speakers, draw the pictures.
# A real LAION-CLAP teacher: SUPMAM_CLAP_CHECKPOINT=/path/630k-audioset-best.pt make demo
demo: install
	$(VENV)/bin/supmam-demo --out demo_output

clean:
	rm -rf $(VENV)
