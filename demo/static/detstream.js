// detstream's live viewer: the browser webcam (or a server-side stream) over a WebSocket.
//
// Webcam: each new camera frame (read from the camera track with MediaStreamTrackProcessor
// where the browser has it, else from a <video> with requestVideoFrameCallback) is drawn to a
// canvas, encoded as JPEG and sent with a frame id, keeping at most MAX_IN_FLIGHT frames
// unanswered; the server keeps only the newest frame it has not started, runs the pipeline
// and sends back the annotated frame with the same id, so capture-to-display latency is
// measured here, in the page, from the camera frame's own capture time to the moment its
// result is drawn.
// Figures are kept in window.detstreamStats[mode] for `detstream bench demo` and the tests.

// Frames unanswered at most. The server tracks and returns every frame it takes at the
// camera's rate (the detector works beside them, detect-every 0) and answers a frame it
// replaced with a newer one at once ("dropped"), so frames do not pile up there; the limit
// only keeps a slow link from filling up. At 30 fps the page skips a camera frame whenever
// a result takes longer than MAX_IN_FLIGHT frame intervals: 3 (when the server showed only
// the frames the model had seen) skipped every frame slower than 100 ms, below the page's
// 150 ms p95 target; 5 allows 166 ms.
const MAX_IN_FLIGHT = 5;
const JPEG_QUALITY = 0.8;
const WINDOW_MS = 2000; // FPS and latency over the last two seconds
// The waits the server reports apart from the stages' own work (demo/live.py's header).
const WAIT_LABELS = {
  inference: "track waited for frames' detections",
  "next frame": "capture waited for the next frame (JPEG decode included)",
};

function clientId() {
  if (!window.__detstreamClient) {
    window.__detstreamClient = (crypto.randomUUID ? crypto.randomUUID()
      : String(Math.random()).slice(2) + String(Date.now()));
  }
  return window.__detstreamClient;
}

function wsUrl(path) {
  const url = new URL(path, document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("client", clientId());
  return url.href;
}

function percentile(values, q) {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q / 100 * sorted.length))];
}

class Viewer {
  constructor(root, mode) {
    this.root = root;
    this.mode = mode;
    this.q = (sel) => root.querySelector(sel);
    this.out = this.q(".ds-out");
    // Opaque canvases composite more cheaply; the encoder's pixels are never read back.
    this.ctx = this.out.getContext("2d", { alpha: false });
    this.cam = this.q(".ds-cam");
    this.encoder = document.createElement("canvas");
    this.encoderCtx = this.encoder.getContext("2d", { alpha: false });
    this.ws = null;
    this.running = false;
    this.stats = this.freshStats();
    (window.detstreamStats = window.detstreamStats || {})[mode] = this.stats;
    this.q(".ds-start").addEventListener("click", () => this.start());
    this.q(".ds-stop").addEventListener("click", () => this.stop("stopped"));
    window.addEventListener("pagehide", () => this.stop("page closed"));
    setInterval(() => this.render(), 250);
  }

  freshStats() {
    return { state: "idle", sent: 0, shown: 0, dropped: 0, serverDropped: 0, started: 0,
             firstShown: 0, lastShown: 0, shownAt: [], latency: [], log: [], timings: {},
             stages: {}, waits: {},
             model: "", objects: 0, message: "", inFlight: 0 };
  }

  say(text, kind = "info") {
    const box = this.q(".ds-message");
    box.textContent = text;
    box.dataset.kind = kind;
    this.stats.message = text;
  }

  setState(state) {
    this.stats.state = state;
    this.q(".ds-state").textContent = state;
    this.root.dataset.state = state;
    this.q(".ds-start").disabled = state !== "idle";
    this.q(".ds-stop").disabled = state === "idle";
  }

  async start() {
    if (this.running) return;
    this.stats = this.freshStats();
    window.detstreamStats[this.mode] = this.stats;
    this.pending = new Map(); // frame id -> capture time
    this.seq = 0;
    this.say("");
    this.setState("connecting");
    const start = { type: "start", mode: this.mode };
    if (this.mode === "webcam") {
      try {
        this.media = await navigator.mediaDevices.getUserMedia({
          video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
          audio: false });
      } catch (err) {
        this.say(`The camera could not be opened: ${err.message || err}. Allow camera access `
                 + "for this page and try again.", "error");
        this.setState("idle");
        return;
      }
    } else {
      start.uri = this.q(".ds-uri").value.trim();
    }
    this.running = true;
    this.ws = new WebSocket(wsUrl("detstream/ws/live"));
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => this.ws.send(JSON.stringify(start));
    this.ws.onmessage = (event) => this.receive(event);
    this.ws.onclose = () => this.stop(this.stats.state === "running" ? "disconnected" : null);
  }

  stop(reason) {
    if (!this.running) return;
    this.running = false;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      try { this.ws.send(JSON.stringify({ type: "stop" })); } catch (e) { /* closing */ }
      this.ws.close();
    }
    if (this.reader) {
      this.reader.cancel().catch(() => {});
      this.reader = null;
    }
    if (this.media) {
      this.media.getTracks().forEach((track) => track.stop());
      this.media = null;
      this.cam.srcObject = null;
    }
    if (reason && !this.stats.message) this.say(reason);
    this.setState("idle");
  }

  receive(event) {
    if (typeof event.data === "string") {
      const msg = JSON.parse(event.data);
      if (msg.type === "queued") {
        this.setState("queued");
        this.say(`Waiting: number ${msg.position} in line for the model.`);
      } else if (msg.type === "started" || msg.type === "settings") {
        this.stats.model = msg.model;
        this.q(".ds-model").textContent = msg.model;
        if (msg.type === "started") {
          this.setState("running");
          this.say("");
          this.stats.started = performance.now();
          if (this.mode === "webcam") this.startFrames();
        }
      } else if (msg.type === "dropped") {
        for (const id of msg.ids) {
          if (this.pending.delete(id)) this.stats.inFlight -= 1;
          this.stats.serverDropped += 1;
        }
      } else if (msg.type === "error") {
        this.say(msg.message, "error");
        if (msg.fatal !== false && this.stats.state !== "running") this.stop(null);
      } else if (msg.type === "ended") {
        if (this.stats.state === "running" && this.mode === "stream") this.say("The stream ended.");
        this.stop(null);
      }
      return;
    }
    const view = new DataView(event.data);
    const seq = view.getUint32(0, true);
    const headerLength = view.getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(event.data, 8, headerLength)));
    const jpeg = new Blob([new Uint8Array(event.data, 8 + headerLength)], { type: "image/jpeg" });
    const captured = this.pending ? this.pending.get(seq) : undefined;
    if (captured !== undefined) {
      this.pending.delete(seq);
      this.stats.inFlight -= 1;
    }
    createImageBitmap(jpeg).then((bitmap) => {
      if (this.out.width !== bitmap.width || this.out.height !== bitmap.height) {
        this.out.width = bitmap.width;
        this.out.height = bitmap.height;
      }
      this.ctx.drawImage(bitmap, 0, 0);
      bitmap.close();
      const now = performance.now();
      const s = this.stats;
      s.shown += 1;
      if (!s.firstShown) s.firstShown = now;
      s.lastShown = now;
      s.shownAt.push(now);
      if (captured !== undefined) {
        s.latency.push(now - captured);
        s.log.push([now, now - captured]);
      }
      s.timings = header.timings; // this frame's own (no detector time when it ran beside)
      s.stages = header.stages || {}; // each stage's own work, last two seconds
      s.waits = header.waits || {}; // waits, apart from the work
      s.boxes = header.boxes; // what the canvas shows now (tests check its pixels)
      s.objects = header.objects;
      s.serverFps = header.fps;
      s.serverDroppedTotal = header.dropped;
      this.root.dataset.shown = String(s.shown);
    });
  }

  startFrames() {
    const track = this.media.getVideoTracks()[0];
    if (window.MediaStreamTrackProcessor) {
      // Frames straight from the camera track: no <video> to decode and composite.
      this.reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 1 }).readable
        .getReader();
      this.pump(this.reader);
    } else {
      this.cam.srcObject = this.media;
      this.cam.play().catch(() => {});
      this.cam.requestVideoFrameCallback((n, m) => this.frame(n, m));
    }
  }

  async pump(reader) {
    while (this.running && this.stats.state === "running") {
      let result;
      try {
        result = await reader.read();
      } catch (err) {
        break;
      }
      if (result.done) break;
      const frame = result.value;
      const now = performance.now();
      // A camera frame's timestamp is its capture time (microseconds) when it is on the
      // page's clock; otherwise the moment it reached the page stands in.
      const stamp = frame.timestamp / 1000;
      const captured = Math.abs(stamp - now) < 1000 ? Math.min(stamp, now) : now;
      this.send(frame, captured, frame.displayWidth, frame.displayHeight);
      frame.close();
    }
  }

  frame(now, meta) {
    if (!this.running || this.stats.state !== "running") return;
    this.cam.requestVideoFrameCallback((n, m) => this.frame(n, m));
    this.send(this.cam, meta.captureTime || now, meta.width || this.cam.videoWidth,
              meta.height || this.cam.videoHeight);
  }

  send(image, captured, w, h) {
    if (this.stats.inFlight >= MAX_IN_FLIGHT || this.ws.readyState !== WebSocket.OPEN) {
      this.stats.dropped += 1; // the camera's frame is not sent: the newest one will be
      return;
    }
    if (this.encoder.width !== w || this.encoder.height !== h) {
      this.encoder.width = w;
      this.encoder.height = h;
    }
    this.encoderCtx.drawImage(image, 0, 0, w, h);
    const seq = (this.seq = (this.seq + 1) >>> 0);
    this.pending.set(seq, captured);
    this.stats.inFlight += 1;
    this.encoder.toBlob((blob) => {
      if (!blob || !this.running || this.ws.readyState !== WebSocket.OPEN) return;
      const head = new Uint8Array(4);
      new DataView(head.buffer).setUint32(0, seq, true);
      this.ws.send(new Blob([head, blob]));
      this.stats.sent += 1;
    }, "image/jpeg", JPEG_QUALITY);
  }

  render() {
    const s = this.stats;
    const now = performance.now();
    while (s.shownAt.length && s.shownAt[0] < now - WINDOW_MS) s.shownAt.shift();
    const recent = s.log.filter(([t]) => t >= now - WINDOW_MS).map(([, l]) => l);
    if (s.log.length > 20000) s.log.splice(0, s.log.length - 20000);
    if (s.latency.length > 20000) s.latency.splice(0, s.latency.length - 20000);
    const fps = s.shownAt.length > 1 ? (s.shownAt.length - 1) * 1000
      / Math.max(1, s.shownAt[s.shownAt.length - 1] - s.shownAt[0]) : 0;
    s.fps = this.running ? fps : 0;
    this.q(".ds-fps").textContent = this.running ? fps.toFixed(1) : "–";
    this.q(".ds-lat").textContent = recent.length ? percentile(recent, 50).toFixed(0) : "–";
    this.q(".ds-lat95").textContent = recent.length ? percentile(recent, 95).toFixed(0) : "–";
    this.q(".ds-drop").textContent = String(s.dropped + s.serverDropped);
    this.q(".ds-obj").textContent = String(s.objects || 0);
    this.q(".ds-timings tbody").innerHTML = stageRows(s.stages, s.waits);
  }
}

// The stage table: each stage's own work (mean ms per frame it worked on, frames per second
// it worked on), then the waits on rows of their own, labelled as waits.
function stageRows(stages, waits) {
  const row = (name, item, cls) => `<tr class="${cls}"><td>${name}</td>`
    + `<td>${Number(item.ms).toFixed(1)} ms</td><td>${Number(item.per_s).toFixed(1)}/s</td></tr>`;
  let html = Object.entries(stages || {}).map(([name, item]) => row(name, item, "ds-work"))
    .join("");
  const waited = Object.entries(waits || {});
  if (waited.length) {
    html += '<tr class="ds-waits-head"><th colspan="3">waits (not work)</th></tr>';
    html += waited.map(([name, item]) => row(WAIT_LABELS[name] || name, item, "ds-wait"))
      .join("");
  }
  return html;
}

export function mount(root, mode) {
  if (root.__detstreamViewer) return root.__detstreamViewer;
  const viewer = new Viewer(root, mode);
  root.__detstreamViewer = viewer;
  // The markup is on the page before this module has loaded: scripts (the tests, `detstream
  // bench demo`) wait for this mark before pressing a button, or the press would go nowhere.
  root.dataset.ready = "1";
  return viewer;
}
