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
// Counting lines and watched areas: drawn here by clicking on the shown frame (mapped from the
// canvas's CSS pixels to the frame's), stored by the server as the page's settings (POST
// detstream/api/rules, which names them and checks them); a running session starts again
// with them. The counts and events come in the results' headers (demo/rules.py).
const EVENTS_SHOWN = 20;
// Event clips (demo/clips.py): the server names each finished MP4 in a result's header (or in
// a "clips" message when a run ends); the list links to GET detstream/clips/..., which serves
// only this page's own clips. Kept across Stop and Start: the files stay until the tab closes.
const CLIPS_SHOWN = 20;
const CLOSE_CSS_PX = 12; // a click this near an area's first corner closes it
const DRAFT_COLOUR = "#ffd700";
const EVENT_WORDS = { line_crossed: "crossed", zone_entered: "entered", zone_left: "left",
                      dwell_exceeded: "loitering" };
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
    this.tool = null; // "line" or "area" while one is being drawn
    this.draft = []; // its points so far, frame pixels
    this.rules = { lines: [], areas: [], dwell: null }; // the page's, as the server last said
    this.lastFrame = null; // the frame shown, kept to draw the draft over it
    this.shownPanel = "";
    this.shownClips = "";
    for (const button of root.querySelectorAll(".ds-tool")) {
      button.addEventListener("click", () => this.setTool(
        this.tool === button.dataset.tool ? null : button.dataset.tool));
    }
    this.q(".ds-finish").addEventListener("click", () => this.finishArea());
    this.q(".ds-clear-rules").addEventListener("click", () => this.changeRules(
      { action: "clear" }));
    this.out.addEventListener("click", (event) => this.click(event));
    window.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.tool) this.setTool(null);
    });
    window.addEventListener("pagehide", () => this.stop("page closed"));
    setInterval(() => this.render(), 250);
  }

  freshStats() {
    return { state: "idle", sent: 0, shown: 0, dropped: 0, serverDropped: 0, started: 0,
             firstShown: 0, lastShown: 0, shownAt: [], latency: [], log: [], timings: {},
             stages: {}, waits: {},
             model: "", objects: 0, message: "", inFlight: 0, analytics: null,
             ruleEvents: [], restarts: 0, clips: [] };
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
    const clips = this.stats.clips; // still on the server: still listed
    this.stats = this.freshStats();
    this.stats.clips = clips;
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
        if (msg.rules) this.rules = msg.rules;
        if (msg.type === "started") {
          this.setState("running");
          this.say("");
          this.stats.started = performance.now();
          if (this.mode === "webcam") this.startFrames();
        }
      } else if (msg.type === "restarted") {
        // A new run with the new rules: the old run's unanswered frames will not be answered.
        this.pending.clear();
        this.stats.inFlight = 0;
        this.stats.restarts += 1;
        this.stats.analytics = null;
        this.stats.ruleEvents = [];
        this.rules = msg.rules;
        this.hint("The rules changed: the run started again with them, so the counts start "
                  + "over.");
      } else if (msg.type === "clips") {
        this.addClips(msg.clips);
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
    if (header.analytics) this.stats.analytics = header.analytics;
    if (header.clips) this.addClips(header.clips);
    if (header.rule_events) {
      const at = new Date().toLocaleTimeString();
      const fresh = header.rule_events.map((e) => ({ ...e, at })).reverse();
      this.stats.ruleEvents = fresh.concat(this.stats.ruleEvents).slice(0, EVENTS_SHOWN);
    }
    createImageBitmap(jpeg).then((bitmap) => {
      if (this.out.width !== bitmap.width || this.out.height !== bitmap.height) {
        this.out.width = bitmap.width;
        this.out.height = bitmap.height;
      }
      if (this.lastFrame) this.lastFrame.close();
      this.lastFrame = bitmap;
      this.ctx.drawImage(bitmap, 0, 0);
      if (this.draft.length) this.drawOverlay(false);
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
    this.renderRules();
    this.renderClips();
  }

  // ------------------------------------------------------------- lines and areas
  setTool(wanted) {
    // Rules are drawn on a frame: until one is shown there is nothing to click on.
    const tool = wanted && this.lastFrame ? wanted : null;
    this.tool = tool;
    this.draft = [];
    this.root.dataset.tool = tool || "";
    for (const button of this.root.querySelectorAll(".ds-tool")) {
      button.classList.toggle("ds-active", button.dataset.tool === tool);
    }
    this.q(".ds-finish").disabled = true;
    if (wanted && !tool) {
      this.hint(this.mode === "webcam" ? "Start the camera first: rules are drawn on the video."
        : "Play a stream first: rules are drawn on the video.");
    } else {
      this.hint(tool === "line" ? "Click the line's two ends on the video."
        : tool === "area" ? "Click the area's corners; click the first one again or Finish area."
          : "");
    }
    this.redraw();
  }

  hint(text, kind = "info") {
    const box = this.q(".ds-rules-hint");
    box.textContent = text;
    box.dataset.kind = kind;
  }

  // The frame pixel under a click (the canvas is letterboxed in its box: object-fit contain),
  // or null outside the frame; and how many frame pixels a CSS pixel is.
  framePoint(event) {
    const rect = this.out.getBoundingClientRect();
    const w = this.out.width;
    const h = this.out.height;
    const scale = Math.min(rect.width / w, rect.height / h);
    const x = (event.clientX - rect.left - (rect.width - w * scale) / 2) / scale;
    const y = (event.clientY - rect.top - (rect.height - h * scale) / 2) / scale;
    if (!(scale > 0) || x < 0 || y < 0 || x > w || y > h) return null;
    return { point: [Math.round(x * 10) / 10, Math.round(y * 10) / 10], perCss: 1 / scale };
  }

  click(event) {
    if (!this.tool) return;
    const at = this.framePoint(event);
    if (!at) return;
    const [x, y] = at.point;
    if (this.tool === "area" && this.draft.length >= 3) {
      const [x0, y0] = this.draft[0];
      if (Math.hypot(x - x0, y - y0) <= CLOSE_CSS_PX * at.perCss) {
        this.finishArea();
        return;
      }
    }
    this.draft.push(at.point);
    if (this.tool === "line" && this.draft.length === 2) {
      this.changeRules({ action: "add", kind: "line", points: this.draft });
      return;
    }
    this.q(".ds-finish").disabled = !(this.tool === "area" && this.draft.length >= 3);
    if (this.tool === "line") this.hint("Click the line's other end.");
    else this.hint(`${this.draft.length} corner(s): click the first one again or Finish area.`);
    this.redraw();
  }

  finishArea() {
    if (this.tool !== "area" || this.draft.length < 3) return;
    this.changeRules({ action: "add", kind: "area", points: this.draft });
  }

  async changeRules(body) {
    const url = new URL("detstream/api/rules", document.baseURI);
    url.searchParams.set("client", clientId());
    let answer;
    try {
      const reply = await fetch(url.href, { method: "POST", body: JSON.stringify(body),
                                            headers: { "Content-Type": "application/json" } });
      answer = await reply.json();
    } catch (err) {
      answer = { ok: false, message: `the server did not answer (${err.message || err})` };
    }
    if (answer.rules) this.rules = answer.rules;
    this.setTool(null);
    if (!answer.ok) {
      this.hint(`Not added: ${answer.message}`, "error");
      return;
    }
    if (!this.running) { // the last run's counts were of the old rules
      this.stats.analytics = null;
      this.stats.ruleEvents = [];
    }
    this.hint(`${answer.message}${this.running ? "; the run starts again with the rules"
      : "; they apply from the next start"}.`);
  }

  // The last frame again, with the rules (only while no run draws them itself) and the
  // draft over it.
  redraw() {
    if (!this.lastFrame) return;
    this.ctx.drawImage(this.lastFrame, 0, 0);
    this.drawOverlay(!this.running);
  }

  drawOverlay(withRules) {
    const ctx = this.ctx;
    const rect = this.out.getBoundingClientRect();
    const px = rect.width > 0 ? this.out.width / rect.width : 1; // frame pixels per CSS pixel
    ctx.save();
    ctx.lineWidth = 2 * px;
    ctx.font = `${Math.round(13 * px)}px sans-serif`;
    if (withRules) {
      ctx.strokeStyle = "#ffffff";
      ctx.fillStyle = "#ffffff";
      for (const rule of [...this.rules.lines, ...this.rules.areas]) {
        ctx.beginPath();
        rule.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        if (rule.points.length > 2) ctx.closePath();
        ctx.stroke();
        ctx.fillText(rule.name, rule.points[0][0] + 4 * px, rule.points[0][1] - 4 * px);
      }
    }
    if (this.draft.length) {
      ctx.strokeStyle = DRAFT_COLOUR;
      ctx.fillStyle = DRAFT_COLOUR;
      ctx.beginPath();
      this.draft.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      for (const [x, y] of this.draft) {
        ctx.beginPath();
        ctx.arc(x, y, 4 * px, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  // Finished clips (oldest first, as the server sends them) go to the top of the list.
  addClips(clips) {
    const at = new Date().toLocaleTimeString();
    const fresh = clips.map((c) => ({ ...c, at, href: new URL(c.url, document.baseURI).href }));
    this.stats.clips = fresh.reverse().concat(this.stats.clips).slice(0, CLIPS_SHOWN);
  }

  renderClips() {
    const clips = this.stats.clips;
    const key = JSON.stringify([clips.length, clips.length && clips[0].name]);
    if (key === this.shownClips) return;
    this.shownClips = key;
    this.q(".ds-clips").hidden = !clips.length;
    this.q(".ds-clip-list").innerHTML = clips.map((c) => {
      const kinds = c.kinds.map((k) => EVENT_WORDS[k] || k).join(", ");
      const more = c.events > 1 ? ` (${c.events} events)` : "";
      return `<li data-name="${esc(c.name)}"><span class="ds-ev-time" title="finished at">`
        + `${esc(c.at)}</span> <a class="ds-clip-play" href="${esc(c.href)}" target="_blank" `
        + `rel="noopener" title="play ${esc(c.name)}"><b>${esc(c.rules.join(", "))}</b> `
        + `${esc(kinds)} · #${esc(c.track)} ${esc(c["class"])}${esc(more)}</a> `
        + `<span class="ds-clip-len">${Number(c.seconds).toFixed(1)} s</span> `
        + `<a class="ds-clip-save" href="${esc(c.href)}" download="${esc(c.name)}" `
        + `title="save ${esc(c.name)}">save</a></li>`;
    }).join("");
  }

  // The counters (from the last analytics, or the rules' names before any) and the events.
  renderRules() {
    const s = this.stats;
    const names = [...this.rules.lines, ...this.rules.areas].map((r) => r.name);
    const analytics = s.analytics || { lines: [], areas: [] };
    const any = names.length || analytics.lines.length || analytics.areas.length;
    this.root.dataset.rules = any ? "1" : "";
    const key = JSON.stringify([names, analytics, s.ruleEvents.length && s.ruleEvents[0],
                                s.ruleEvents.length, this.rules.dwell]);
    if (key === this.shownPanel) return;
    this.shownPanel = key;
    // Lines and areas apart: a line counts in and out, an area who is inside, came and left.
    const shown = new Set([...analytics.lines, ...analytics.areas].map((r) => r.name));
    const waiting = (kind, cells) => this.rules[kind].filter((r) => !shown.has(r.name))
      .map((r) => `<tr data-rule="${esc(r.name)}"><td>${esc(r.name)}</td>`
        + `${"<td>–</td>".repeat(cells)}</tr>`).join("");
    const lineRows = analytics.lines.map((line) => {
      const byClass = Object.entries(line.classes).map(([c, [i, o]]) => `${c} ${i}/${o}`)
        .join(", ");
      return `<tr data-rule="${esc(line.name)}" title="in / out by class: ${esc(byClass)}">`
        + `<td>${esc(line.name)}</td><td class="ds-n-in">${line.in}</td>`
        + `<td class="ds-n-out">${line.out}</td></tr>`;
    }).join("") + waiting("lines", 2);
    const areaRows = analytics.areas.map((area) => {
      const longest = area.longest === null ? "–" : `${area.longest.toFixed(1)} s`;
      return `<tr data-rule="${esc(area.name)}"><td>${esc(area.name)}</td>`
        + `<td class="ds-n-inside">${area.inside}</td>`
        + `<td class="ds-n-entries">${area.entries}</td>`
        + `<td class="ds-n-exits">${area.exits}</td><td>${longest}</td></tr>`;
    }).join("") + waiting("areas", 4);
    const tables = [[".ds-line-counts", lineRows], [".ds-area-counts", areaRows]];
    for (const [selector, rows] of tables) {
      const table = this.q(selector);
      table.hidden = !rows;
      table.querySelector("tbody").innerHTML = rows;
    }
    const dwell = this.rules.dwell ? ` · loitering after ${this.rules.dwell} s` : "";
    this.q(".ds-events-title").textContent = (s.ruleEvents.length ? "events, newest first"
      : "no events yet") + dwell;
    this.q(".ds-events").innerHTML = s.ruleEvents.map((e) => {
      const detail = e.direction || (e.dwell_s !== undefined ? `${e.dwell_s.toFixed(1)} s` : "");
      return `<li data-kind="${esc(e.event)}" data-rule="${esc(e.rule)}">`
        + `<span class="ds-ev-time">${esc(e.at)}</span> <b>${esc(e.rule)}</b> `
        + `${EVENT_WORDS[e.event] || esc(e.event)} ${esc(detail)} · #${e.track_id} `
        + `${esc(e["class"])}</li>`;
    }).join("");
  }
}

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
                                                     '"': "&quot;", "'": "&#39;" }[c]));
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
