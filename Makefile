# Every target sets itself up on a fresh machine: it creates .venv when missing and installs
# what it needs. `make run` and `make test` are the README's quick start.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
RUN_STAMP := $(VENV)/.detstream-run
DEV_STAMP := $(VENV)/.detstream-dev

.PHONY: run test demo browser rtsp mqtt lint bench-synth default-model clean docs

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

## run: the main job on the embedded default (no network, no GPU): a synthetic scene through
## the default model and tracker into runs/run-N/, scored against the scene's truth
run: $(RUN_STAMP)
	$(VENV)/bin/detstream doctor
	$(VENV)/bin/detstream run

## test: the whole test suite (the demo's browser tests use Debian's Chromium, the RTSP camera
## tests Debian's GStreamer RTSP server, the MQTT alert tests Debian's mosquitto, all installed
## here), spread over the cores by
## pytest-xdist: one worker per core (at most 4), each module's tests together in one worker,
## the slowest modules first (tests/conftest.py); the 20 slowest tests are listed at the end
test: $(DEV_STAMP) browser rtsp mqtt
	$(PY) -m pytest -n auto --dist loadscope --no-loadscope-reorder --durations=20

## demo: the Gradio page on http://127.0.0.1:7860 (webcam, video upload; Ctrl-C stops it)
demo: $(RUN_STAMP)
	$(VENV)/bin/detstream demo

## browser: headless Chromium for the browser tests (Debian's package; needs root)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "note: install Chromium (apt-get install chromium): the browser tests need it"; \
	  fi; }

## rtsp: Debian's GStreamer RTSP server for the RTSP camera tests (the system python3 runs it;
## needs root)
RTSP_PACKAGES := gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
rtsp:
	@dpkg -s $(RTSP_PACKAGES) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's GStreamer RTSP server for the RTSP camera tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq $(RTSP_PACKAGES) >/dev/null; \
	  else \
	    echo "note: install $(RTSP_PACKAGES) (apt-get): the RTSP camera tests need them"; \
	  fi; }

## mqtt: Debian's mosquitto broker for the MQTT alert tests (they start their own; needs root)
mqtt:
	@test -x /usr/sbin/mosquitto || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's mosquitto for the MQTT alert tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq mosquitto >/dev/null; \
	  else \
	    echo "note: install mosquitto (apt-get): the MQTT alert tests need it"; \
	  fi; }

## docs: the documentation site (MkDocs, mkdocs.yml) into runs/site/, --strict as in the tests;
## `.venv/bin/mkdocs serve` shows it on http://127.0.0.1:8000 while you edit
docs: $(DEV_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir runs/site

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check engines stream demo tests

## bench-synth: frames/s of the synthetic world at 1280x720 (BENCHMARKS.md)
bench-synth: $(RUN_STAMP)
	$(VENV)/bin/detstream synth video runs/synth/bench --frames 600 --size 1280x720 --bench
	$(VENV)/bin/detstream synth video runs/synth/bench --frames 600 --size 1280x720 \
		--camera-motion --objects 16 --bench

## default-model: retrain the embedded default model (about 10 h on a 2-core CPU; README)
DEFAULT_RUN := runs/default
default-model: $(RUN_STAMP)
	$(VENV)/bin/detstream synth dataset $(DEFAULT_RUN)/data --train 24000 --val 1000 \
		--imgsz 320 --seed 0
	rm -rf $(DEFAULT_RUN)/train
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data/data.yaml --model n --imgsz 320 \
		--epochs 9 --batch 16 --device $(or $(DEVICE),cpu) --workers 2 --optimizer adamw \
		--lr0 0.002 --warmup-epochs 1 --close-mosaic 2 --seed 0 --no-amp --out $(DEFAULT_RUN)/train
	rm -rf $(DEFAULT_RUN)/finetune
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data/data.yaml --model n --imgsz 320 \
		--epochs 10 --batch 16 --device $(or $(DEVICE),cpu) --workers 2 --optimizer adamw \
		--lr0 0.001 --warmup-epochs 0.1 --close-mosaic 3 --seed 1 --augment scale=0.25 --no-amp \
		--weights $(DEFAULT_RUN)/train/weights/best.safetensors --out $(DEFAULT_RUN)/finetune
	rm -rf $(DEFAULT_RUN)/finetune2
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data/data.yaml --model n --imgsz 320 \
		--epochs 9 --batch 16 --device $(or $(DEVICE),cpu) --workers 0 --optimizer adamw \
		--lr0 0.001 --warmup-epochs 0.1 --close-mosaic 3 --seed 2 --augment scale=0.25 \
		--weights $(DEFAULT_RUN)/finetune/weights/best.safetensors --out $(DEFAULT_RUN)/finetune2
	rm -rf $(DEFAULT_RUN)/hires
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data/data.yaml --model n --imgsz 416 \
		--epochs 6 --batch 16 --device $(or $(DEVICE),cpu) --workers 0 --optimizer adamw \
		--lr0 0.0005 --warmup-epochs 0.1 --close-mosaic 2 --seed 3 --augment scale=0.25 \
		--weights $(DEFAULT_RUN)/finetune2/weights/best.safetensors --out $(DEFAULT_RUN)/hires
	rm -rf $(DEFAULT_RUN)/embed $(DEFAULT_RUN)/embed2
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data/data.yaml --model n --imgsz 416 \
		--epochs 3 --batch 32 --device $(or $(DEVICE),cpu) --workers 1 --optimizer adamw \
		--lr0 0.002 --warmup-epochs 0.05 --close-mosaic 0 --seed 4 \
		--augment scale=0.25 hsv_h=0 hsv_s=0.1 hsv_v=0.1 \
		--weights $(DEFAULT_RUN)/hires/weights/best.safetensors --embed-dim 32 --freeze detector \
		--out $(DEFAULT_RUN)/embed
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data/data.yaml --model n --imgsz 416 \
		--epochs 2 --batch 32 --device $(or $(DEVICE),cpu) --workers 1 --optimizer adamw \
		--lr0 0.001 --warmup-epochs 0.05 --close-mosaic 0 --seed 6 \
		--augment scale=0.25 hsv_h=0 hsv_s=0.1 hsv_v=0.1 \
		--weights $(DEFAULT_RUN)/embed/weights/best.safetensors --embed-dim 32 --freeze detector \
		--out $(DEFAULT_RUN)/embed2
	$(VENV)/bin/detstream synth dataset $(DEFAULT_RUN)/data15 --train 24000 --val 1000 \
		--imgsz 320 --seed 0 --min-visibility 0.15
	rm -rf $(DEFAULT_RUN)/hidden $(DEFAULT_RUN)/hidden-embed
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data15/data.yaml --model n --imgsz 416 \
		--epochs 3 --stop-after 2 --batch 32 --device $(or $(DEVICE),cpu) --workers 1 \
		--optimizer adamw --lr0 0.0005 --warmup-epochs 0.05 --close-mosaic 1 --seed 8 \
		--augment scale=0.25 hsv_h=0 hsv_s=0.1 hsv_v=0.1 \
		--weights $(DEFAULT_RUN)/embed2/weights/best.safetensors --embed-dim 32 --id-gain 0.05 \
		--out $(DEFAULT_RUN)/hidden
	$(VENV)/bin/detstream train --data $(DEFAULT_RUN)/data15/data.yaml --model n --imgsz 416 \
		--epochs 2 --batch 32 --device $(or $(DEVICE),cpu) --workers 1 --optimizer adamw \
		--lr0 0.001 --warmup-epochs 0.05 --close-mosaic 0 --seed 9 \
		--augment scale=0.25 hsv_h=0 hsv_s=0.1 hsv_v=0.1 \
		--weights $(DEFAULT_RUN)/hidden/weights/last.safetensors --embed-dim 32 --freeze detector \
		--out $(DEFAULT_RUN)/hidden-embed
	cp $(DEFAULT_RUN)/hidden-embed/weights/best.safetensors engines/weights/default.safetensors
	cp $(DEFAULT_RUN)/hidden-embed/weights/best.json engines/weights/default.json
	$(VENV)/bin/detstream val --model default --data $(DEFAULT_RUN)/data/data.yaml \
		--json $(DEFAULT_RUN)/val-default.json

clean:
	rm -rf runs .pytest_cache
