// Side-by-side, linked point-cloud panels for the semantic atlas (runs inside a gr.HTML component).
// `element`, `props`, `trigger` and `watch` are provided by Gradio's gr.HTML js_on_load. The points
// are drawn by regl-scatterplot (WebGL; window.AtlasScatter, explorer/static/scatter.js, built by
// js/build.sh from js/package-lock.json), every panel through one shared WebGL renderer.
// props.value is a JSON string (explorer/ui/atlas/payload.py): {base, panels:[{key,title,count,
// bounds:[x0,x1,y0,y1]}], n, drawn, sampled, classes, colors, color_by, thumbs:{prefix, indexed|
// width|names}, columns:{key, inline|url, parts:{name:[offset, dtype, length]}}, note, selected,
// neighbors:{key:[idx]}, highlight:[idx], extra:{idx:{key:[x,y]}}, message, selection:[idx],
// overlap:{a,b,titles,k,own_group_left_out} or null}; the per-point columns (codes, x:<key>,
// y:<key>, ids, thumbs, overlap) are one binary block: columns.inline (base64, a small set's) or
// a file fetched from columns.url. Or a click's update
// {base, update:true, selected, neighbors, highlight, extra, selection}, applied to the panels
// already drawn from the same base. Selection, neighbours and highlights are indices in the whole
// set; a set bigger than the display cap is drawn as a sample (the ids column).
// A lasso (Shift+drag, or the Lasso button) in any panel selects the same images in every panel
// and is sent to the server as the "points_selected" event {indices, space}; a click on a point
// is sent as "point_click" {index}.
(function () {
  const PANEL_HEIGHT = 420;
  const PAD = 0.95; // the points fill 95 % of each panel's width and height
  const FALLBACK = ["#4c78a8", "#f58518", "#54a24b", "#e45756"];
  // Overlap colouring: 0 (no neighbour in common) red ... 1 (the same neighbours) blue; 101 bins
  // and one grey bin for a point without a value.
  const AGREE = [[0, [178, 24, 43]], [0.25, [239, 138, 98]], [0.5, [247, 247, 247]], [0.75, [103, 169, 207]], [1, [33, 102, 172]]];
  const NO_VALUE = 101;
  const root = element.querySelector(".atlas-root") || element;
  const CACHE = (window.__atlasFull = window.__atlasFull || {}); // the last full payload, by base
  let state = null; // the payload drawn, with its columns decoded
  let plots = []; // per panel: {div, sp, panel, xs, ys}
  let generation = 0; // a newer payload makes an older one's late fetch a no-op

  function lib() { return window.AtlasScatter; }
  function renderer() {
    if (!window.__atlasRenderer) window.__atlasRenderer = lib().createRenderer();
    return window.__atlasRenderer;
  }
  // The shared renderer draws each panel into a canvas of the window's size, then copies it out:
  // at the largest panel's size instead, each redraw fills a quarter of the pixels or fewer.
  function fitRenderer() {
    if (!plots.length) return;
    const w = Math.max(...plots.map((q) => q.box.clientWidth)), h = Math.max(...plots.map((q) => q.box.clientHeight));
    const r = renderer(), dpr = window.devicePixelRatio || 1;
    if (w > 0 && h > 0 && (r.canvas.width !== Math.round(w * dpr) || r.canvas.height !== Math.round(h * dpr))) {
      r.resize(w, h);
      r.refresh();
    }
  }
  const colourOf = (c) => (state && state.colors ? state.colors[c] : FALLBACK[c % FALLBACK.length]);

  function agreeColour(v) {
    for (let k = 1; k < AGREE.length; k++) {
      if (v <= AGREE[k][0]) {
        const [a, ca] = AGREE[k - 1], [b, cb] = AGREE[k], t = (v - a) / (b - a);
        return "#" + ca.map((c, i) => Math.round(c + (cb[i] - c) * t).toString(16).padStart(2, "0")).join("");
      }
    }
    return "#2166ac";
  }

  // the binary columns: typed-array views of one fetched buffer
  const TYPES = { uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array };
  function columns(buf, parts) {
    const out = {};
    for (const [name, [offset, dtype, length]] of Object.entries(parts)) out[name] = new TYPES[dtype](buf, offset, length);
    return out;
  }
  function fromBase64(text) { // -> ArrayBuffer
    const raw = atob(text), out = new Uint8Array(raw.length);
    for (let k = 0; k < raw.length; k++) out[k] = raw.charCodeAt(k);
    return out.buffer;
  }
  function setIndex(p) { return state.cols.ids ? state.cols.ids[p] : p; }
  function positionOf(i) { // set index -> position among the drawn points (undefined: not drawn)
    if (!state.cols.ids) return i < state.drawn ? i : undefined;
    if (!state.pos) { state.pos = new Map(); state.cols.ids.forEach((id, p) => state.pos.set(id, p)); }
    return state.pos.get(i);
  }
  function thumbUrl(p) {
    const t = state.thumbs;
    if (!t) return null;
    if (t.indexed) return t.prefix + String(setIndex(p)).padStart(t.indexed, "0") + t.suffix;
    if (t.width) return t.prefix + String.fromCharCode.apply(null, state.cols.thumbs.subarray(p * t.width, (p + 1) * t.width));
    return t.names ? t.prefix + t.names[p] : null;
  }
  function ndc(v, lo, hi) { return ((v - lo) / (hi - lo)) * 2 * PAD - PAD; }
  // Each panel's spatial index (KDBush's format), shared with the renderer: handed a million
  // points without one, the library copies them to a worker as a million small arrays. The
  // renderer reads the buffer as it is (KDBush.from wraps it), so the index is made empty before
  // the points are drawn and filled from the typed arrays after the first paint (~0.25 s a
  // panel at a million points); until then the panel takes no hover, click or lasso.
  function emptyIndex(n) { return new (lib().KDBush)(n, 16, Float32Array); }
  function fillIndex(kd, xs, ys) {
    for (let p = 0; p < xs.length; p++) kd.add(xs[p], ys[p]);
    kd.finish();
    return kd;
  }

  // Hover is found here, from the same index, and drawn on the overlay: the renderer's own hover
  // redraws every point on every mouse move (seconds a move at a million points in software
  // WebGL). Moves with a button down (pan, lasso) still reach the renderer.
  if (!window.__atlasHoverGuard) {
    window.__atlasHoverGuard = true;
    window.addEventListener("mousemove", (e) => {
      const box = e.buttons === 0 && e.target && e.target.closest ? e.target.closest(".atlas-canvas") : null;
      const q = box && box.parentNode.__atlas;
      if (!q || !q.hover) return;
      e.stopPropagation();
      q.hover(e);
    }, true);
  }

  // a linear scale with D3's domain/range calls: regl-scatterplot keeps its domain the visible
  // part of [-1, 1] and its range the canvas, so scale(ndc) is a pixel of the panel
  function scale() {
    let d = [-1, 1], r = [0, 1];
    const s = (v) => r[0] + ((v - d[0]) / (d[1] - d[0])) * (r[1] - r[0]);
    s.domain = (x) => (x ? ((d = [x[0], x[1]]), s) : d);
    s.range = (x) => (x ? ((r = [x[0], x[1]]), s) : r);
    s.invert = (px) => d[0] + ((px - r[0]) / (r[1] - r[0])) * (d[1] - d[0]);
    s.copy = () => scale().domain(d).range(r);
    return s;
  }

  function tooltip() {
    let tip = element.querySelector(".atlas-tip");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "atlas-tip";
      tip.innerHTML = '<img alt="thumbnail"><div class="atlas-tip-label"></div>';
      element.appendChild(tip);
      // a reopened atlas's thumbnails are linked into place just after it opens: one not there
      // yet is asked for again, a few times
      const img = tip.querySelector("img");
      img.addEventListener("error", () => {
        const want = img.dataset.want, k = Number(img.dataset.tries || 0);
        if (!want || k >= 5) return;
        img.dataset.tries = String(k + 1);
        setTimeout(() => { if (img.dataset.want === want) img.src = want + (want.includes("?") ? "&" : "?") + "try=" + (k + 1); }, 200 * (k + 1));
      });
    }
    return tip;
  }

  // The clicked point, its neighbours and text matches are drawn on an SVG layer above each panel:
  // moving them costs a few elements; the points stay as drawn.
  const SVGNS = "http://www.w3.org/2000/svg";
  // box's SVG layer of that extra class ("": the overlay; "atlas-hover": the hover ring), made once
  function layerOf(box, extra) {
    const found = [...box.querySelectorAll("svg.atlas-overlay")].find((e) => e.getAttribute("class") === ("atlas-overlay " + extra).trim());
    if (found) return found;
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("class", ("atlas-overlay " + extra).trim());
    box.appendChild(svg);
    return svg;
  }
  const overlayOf = (box) => layerOf(box, "");
  const hoverLayer = (box) => layerOf(box, "atlas-hover");
  function starPoints(cx, cy, r) {
    const pts = [];
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5, rr = k % 2 ? r * 0.45 : r;
      pts.push((cx + rr * Math.cos(a)).toFixed(1) + "," + (cy + rr * Math.sin(a)).toFixed(1));
    }
    return pts.join(" ");
  }
  // where set index i is drawn in plot q, in the panel's pixels (null: not in view)
  function pixelOf(q, i) {
    const p = positionOf(i);
    let gx, gy;
    if (p !== undefined) { gx = q.xs[p]; gy = q.ys[p]; } else {
      const e = state.extra && state.extra[String(i)];
      const v = e && e[q.panel.key];
      if (!v) return null;
      const b = q.panel.bounds;
      gx = ndc(v[0], b[0], b[1]); gy = ndc(v[1], b[2], b[3]);
    }
    const px = q.xScale(gx), py = q.yScale(gy), w = q.box.clientWidth, h = q.box.clientHeight;
    return px >= -1 && px <= w + 1 && py >= -1 && py <= h + 1 ? [px, py] : null;
  }
  function drawOverlay(q) {
    if (!state) return;
    let out = "";
    (state.highlight || []).forEach((i) => {
      const p = pixelOf(q, i);
      if (p) out += '<circle class="atlas-hl" cx="' + p[0] + '" cy="' + p[1] + '" r="7" fill="none" stroke="#111" stroke-width="2.5"/>';
    });
    ((state.neighbors || {})[q.panel.key] || []).forEach((i) => {
      const p = pixelOf(q, i);
      if (!p) return;
      const d = 7.5, pts = [[p[0], p[1] - d], [p[0] + d, p[1]], [p[0], p[1] + d], [p[0] - d, p[1]]];
      out += '<polygon class="atlas-nb" points="' + pts.map((v) => v.join(",")).join(" ") + '" fill="none" stroke="#d62728" stroke-width="2"/>';
    });
    if (state.selected !== null && state.selected !== undefined) {
      const p = pixelOf(q, state.selected);
      if (p) out += '<polygon class="atlas-sel" points="' + starPoints(p[0], p[1], 10) + '" fill="#ffd400" stroke="#000" stroke-width="1.5"/>';
    }
    overlayOf(q.box).innerHTML = out;
    mark(q);
  }
  function drawOverlays() { plots.forEach(drawOverlay); }
  function mark(q) {
    const d = q.div.dataset;
    d.selected = state.selected === null || state.selected === undefined ? "" : String(state.selected);
    d.neighbors = ((state.neighbors || {})[q.panel.key] || []).join(",");
    d.highlight = (state.highlight || []).join(",");
  }

  // The shared selection: every panel selects the same drawn points (the others fade).
  function applySelection(sel, except) {
    if (!state) return;
    state.selection = sel || [];
    const key = state.selection.join(",");
    const drawn = [];
    state.selection.forEach((i) => { const p = positionOf(i); if (p !== undefined) drawn.push(p); });
    plots.forEach((q) => {
      const before = q.div.dataset.selection || ""; // nothing selected yet: ""
      if (q !== except && before !== key) { // (each select or deselect redraws every point)
        q.quiet = true;
        if (drawn.length) q.sp.select(drawn, { preventEvent: true }); else q.sp.deselect({ preventEvent: true });
        q.quiet = false;
      }
      const fade = drawn.length ? 0.15 : 1;
      if (q.fade !== fade) { q.fade = fade; q.sp.set({ opacityInactiveScale: fade }); } // a redraw
      q.div.dataset.selection = key;
      q.div.dataset.selectionDrawn = String(drawn.length);
    });
  }

  // the renderer selected or deselected in q on its own: every panel back to the shared selection
  function restoreSelection(q) {
    q.div.dataset.selection = "";
    applySelection(state.selection);
  }

  function painted(t0, what) {
    // two animation frames after the draw: the browser has painted it
    requestAnimationFrame(() => requestAnimationFrame(() => {
      root.dataset.renderMs = (performance.now() - t0).toFixed(1);
      root.dataset.rendered = what + ":" + (state ? state.base : "") + ":" + String(state && state.selected);
    }));
  }

  function destroy() {
    plots.forEach((q) => { try { q.sp.destroy(); } catch (e) { /* already gone */ } });
    plots = [];
  }

  function legendOf(data) {
    const legend = document.createElement("div");
    legend.className = "atlas-legend";
    if (data.overlap) {
      const ov = data.overlap;
      legend.classList.add("atlas-legend-overlap");
      const text = document.createElement("span");
      text.textContent = "Coloured by agreement: the share of each image's " + ov.k + " nearest neighbours" +
        (ov.own_group_left_out ? " (its own group left out)" : "") + " found in both " + ov.titles[0] +
        " and " + ov.titles[1] + ".";
      const bar = document.createElement("span");
      bar.className = "atlas-agree-bar";
      bar.innerHTML = "<b>0 · none shared</b><i></i><b>all " + ov.k + " shared · 1</b>";
      legend.appendChild(text);
      legend.appendChild(bar);
    } else {
      data.classes.forEach((cls, c) => {
        const item = document.createElement("span");
        item.className = "atlas-legend-item";
        item.innerHTML = '<i style="background:' + colourOf(c) + '"></i>';
        item.appendChild(document.createTextNode(cls));
        legend.appendChild(item);
      });
    }
    return legend;
  }

  // Pan (drag), lasso or box (drag) for every panel at once, and a view reset.
  function toolbar() {
    const bar = document.createElement("div");
    bar.className = "atlas-tools";
    const modes = [["pan", "Pan", "panZoom", "freeform"], ["lasso", "Lasso", "lasso", "freeform"], ["box", "Box", "lasso", "rectangle"]];
    const buttons = modes.map(([name, label, mouseMode, lassoType]) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "atlas-tool";
      b.dataset.mode = name;
      b.textContent = label;
      b.addEventListener("click", () => {
        buttons.forEach((o) => o.classList.toggle("active", o === b));
        root.dataset.mode = name;
        plots.forEach((q) => q.sp.set({ mouseMode, lassoType }));
      });
      return b;
    });
    buttons[0].classList.add("active");
    root.dataset.mode = "pan";
    const reset = document.createElement("button");
    reset.type = "button";
    reset.className = "atlas-tool";
    reset.textContent = "Reset view";
    reset.addEventListener("click", () => plots.forEach((q) => q.sp.reset()));
    const hint = document.createElement("span");
    hint.className = "atlas-hint";
    hint.textContent = "drag to pan, scroll to zoom, Shift+drag to lasso, double-click to clear the selection";
    [...buttons, reset, hint].forEach((b) => bar.appendChild(b));
    return bar;
  }

  function render() {
    if (!lib()) { setTimeout(render, 100); return; }
    const t0 = performance.now();
    let data = null;
    try { data = props.value ? JSON.parse(props.value) : null; } catch (e) { data = null; }
    if (data && data.update) {
      if (state && state.base === data.base && plots.length) { // a click's answer: move the overlays
        if ("selected" in data) { // (a selection's update carries the selection only)
          Object.assign(state, { selected: data.selected, neighbors: data.neighbors, highlight: data.highlight, extra: data.extra });
          drawOverlays();
        }
        if (data.selection) applySelection(data.selection);
        painted(t0, "update");
        return;
      }
      const full = CACHE[data.base];
      if (!full) return; // nothing drawn to update: keep what is on screen
      data = "selected" in data
        ? Object.assign({}, full, { selected: data.selected, neighbors: data.neighbors, highlight: data.highlight,
          extra: data.extra, message: data.message, selection: data.selection || full.selection })
        : Object.assign({}, full, { selection: data.selection || full.selection });
    } else if (data && data.base && data.panels && data.panels.length) {
      for (const k of Object.keys(CACHE)) delete CACHE[k];
      CACHE[data.base] = data;
    }
    const mine = ++generation;
    if (!data || !data.panels || !data.panels.length) {
      destroy();
      root.innerHTML = '<div class="atlas-empty"></div>';
      root.firstChild.textContent = (data && data.message) || "Open an image set to see its atlas.";
      state = null;
      return;
    }
    const cached = state && state.columns && state.columns.key === data.columns.key ? state.cols : null;
    const got = cached ? Promise.resolve(cached)
      : data.columns.inline ? Promise.resolve(columns(fromBase64(data.columns.inline), data.columns.parts))
      : fetch(data.columns.url).then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.arrayBuffer(); })
        .then((buf) => columns(buf, data.columns.parts));
    got.then((cols) => { if (mine === generation) draw(data, cols, t0, performance.now()); })
      .catch((e) => {
        if (mine !== generation) return;
        destroy();
        root.innerHTML = '<div class="atlas-empty"></div>';
        root.firstChild.textContent = "The atlas's points could not be loaded (" + e.message + "): open the set again.";
      });
  }

  function draw(data, cols, t0, tFetched) {
    destroy();
    root.innerHTML = "";
    state = Object.assign({}, data, { cols, pos: null });
    if (data.note) {
      const note = document.createElement("div");
      note.className = "atlas-sample-note";
      note.textContent = data.note;
      root.appendChild(note);
    }
    root.appendChild(legendOf(data));
    root.appendChild(toolbar());
    const row = document.createElement("div");
    row.className = "atlas-row";
    const np = data.panels.length;
    row.dataset.cols = String(np <= 4 ? np : np <= 6 ? 3 : 4); // up to four a row
    root.appendChild(row);
    const tip = tooltip();
    const n = data.drawn;
    const size = n > 200000 ? 1.5 : n > 50000 ? 2 : n > 15000 ? 3 : n > 2000 ? 4 : 7;
    // one colour per class, or per overlap bin (0..100, and grey for no value)
    let value = cols.codes, palette = data.classes.map((c, k) => colourOf(k));
    if (data.overlap) {
      value = new Uint16Array(n);
      cols.overlap.forEach((v, p) => { value[p] = Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, v)) * 100) : NO_VALUE; });
      palette = Array.from({ length: 101 }, (_, k) => agreeColour(k / 100)).concat(["#9ca3af"]);
    }
    const panels = [];
    data.panels.forEach((panel) => {
      const div = document.createElement("div");
      div.className = "atlas-panel";
      div.dataset.space = panel.key;
      div.innerHTML = '<div class="atlas-title"></div><div class="atlas-canvas"><canvas></canvas></div>';
      div.querySelector(".atlas-title").textContent = panel.title;
      if (panel.count) {
        const c = document.createElement("div");
        c.className = "atlas-count";
        c.textContent = panel.count;
        div.querySelector(".atlas-title").appendChild(c);
      }
      row.appendChild(div);
      panels.push([panel, div]);
    });
    // every panel is laid out before any is drawn: each canvas takes its box's size
    panels.forEach(([panel, div]) => {
      const box = div.querySelector(".atlas-canvas"), canvas = box.querySelector("canvas");
      const b = panel.bounds, X = cols["x:" + panel.key], Y = cols["y:" + panel.key];
      const xs = new Float32Array(n), ys = new Float32Array(n);
      for (let p = 0; p < n; p++) { xs[p] = ndc(X[p], b[0], b[1]); ys[p] = ndc(Y[p], b[2], b[3]); }
      const w = Math.max(box.clientWidth, 10), h = Math.max(box.clientHeight, 10);
      const xScale = scale(), yScale = scale();
      const sp = lib().createScatterplot({
        renderer: renderer(), canvas, width: w, height: h, aspectRatio: w / h, xScale, yScale,
        pointSize: size, pointSizeSelected: 1, pointOutlineWidth: 1, opacity: n > 15000 ? 0.75 : 0.9,
        pointColor: palette, pointColorActive: palette, pointColorHover: "#111111", colorBy: "valueA",
        backgroundColor: "#fafafa", lassoColor: "#2563eb", lassoClearEvent: "lassoEnd", deselectOnEscape: false,
        performanceMode: n > 2000000,
      });
      const q = { div, box, sp, panel, xs, ys, xScale, yScale, ids: cols.ids, quiet: false, lassoing: false,
        down: [0, 0], hovered: -1, fade: 1, kd: null, index: null, hover: null };
      div.__atlas = q; // where each point is drawn, for the browser tests and bench/browser_scale.py
      plots.push(q);
      sp.subscribe("view", () => drawOverlay(q));
      sp.subscribe("lassoStart", () => { q.lassoing = true; tip.style.display = "none"; });
      const over = (p) => {
        q.hovered = p;
        const idx = setIndex(p);
        div.dataset.hover = String(idx);
        hoverLayer(box).innerHTML = '<circle cx="' + xScale(xs[p]).toFixed(1) + '" cy="' + yScale(ys[p]).toFixed(1) +
          '" r="' + (size / 2 + 3) + '" fill="none" stroke="#111" stroke-width="1.5"/>';
        const url = thumbUrl(p);
        if (!url) return;
        const img = tip.querySelector("img");
        img.dataset.want = url;
        img.dataset.tries = "0";
        img.src = url;
        tip.querySelector(".atlas-tip-label").textContent = "#" + idx + " · " + data.classes[cols.codes[p]] +
          (data.overlap && Number.isFinite(cols.overlap[p]) ? " · " + Math.round(cols.overlap[p] * 100) + "% of " + data.overlap.k + " neighbours shared" : "");
        tip.style.display = "block";
      };
      const out = () => { q.hovered = -1; tip.style.display = "none"; div.dataset.hover = ""; hoverLayer(box).innerHTML = ""; };
      q.hover = (e) => {
        if (!q.index) return; // not drawn yet
        const r = box.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
        const reach = Math.max(size, 6); // pixels
        const gx = xScale.invert(px), gy = yScale.invert(py);
        const rad = Math.max(Math.abs(xScale.invert(px + reach) - gx), Math.abs(yScale.invert(py + reach) - gy));
        let best = -1, bd = reach * reach;
        for (const k of q.index.within(gx, gy, rad)) {
          const dx = xScale(xs[k]) - px, dy = yScale(ys[k]) - py, d = dx * dx + dy * dy;
          if (d < bd || (d === bd && k < best)) { bd = d; best = k; }
        }
        if (best < 0) { if (q.hovered >= 0) out(); return; }
        if (best !== q.hovered) over(best);
        const at = element.getBoundingClientRect();
        tip.style.left = (e.clientX - at.left + 14) + "px";
        tip.style.top = (e.clientY - at.top + 14) + "px";
      };
      canvas.addEventListener("mouseleave", out);
      sp.subscribe("view", () => { if (q.hovered >= 0) out(); });
      // a click on a point: starred at once, the neighbours come with the server's answer; the
      // shared selection stays as it was. The point under the mouse is the one hovered: the click
      // is taken here, before the renderer would select it and redraw every point.
      const clicked = (p) => {
        tip.style.display = "none";
        state.selected = setIndex(p);
        drawOverlays();
        trigger("point_click", { index: state.selected });
      };
      box.addEventListener("mousedown", (e) => { q.down = [e.clientX, e.clientY]; }, true);
      box.addEventListener("click", (e) => {
        if (!q.index) { e.stopPropagation(); return; } // not interactive yet
        const moved = Math.hypot(e.clientX - q.down[0], e.clientY - q.down[1]) >= 4; // a pan
        if (e.target !== canvas || q.hovered < 0 || moved || e.shiftKey || root.dataset.mode !== "pan") return;
        e.stopPropagation();
        clicked(q.hovered);
      }, true);
      sp.subscribe("select", ({ points }) => {
        if (q.quiet) return;
        tip.style.display = "none";
        if (!q.index) { q.lassoing = false; restoreSelection(q); return; } // searched before it was filled
        if (q.lassoing) { // a lasso or box here selects the same images in every panel
          q.lassoing = false;
          const sel = Array.from(points, setIndex).sort((a, b) => a - b);
          applySelection(sel, q);
          trigger("points_selected", { indices: sel, space: panel.key });
          return;
        }
        // a click the renderer took (no hover before it: a touch, say): its selection undone
        restoreSelection(q);
        clicked(points[0]);
      });
      sp.subscribe("deselect", () => {
        if (q.quiet) return;
        if (!q.index) { restoreSelection(q); return; } // as above
        if (!state.selection.length) return;
        applySelection([], q);
        trigger("points_selected", { indices: [], space: panel.key });
      });
      // panels drawn while hidden (another tab) or before layout get the wrong width: follow
      // the box's width (the height is fixed)
      if (window.ResizeObserver) {
        let last = box.clientWidth;
        new ResizeObserver(() => {
          const cw = box.clientWidth;
          if (cw > 0 && cw !== last) { last = cw; fitRenderer(); sp.set({ width: cw, height: h, aspectRatio: cw / h }); drawOverlay(q); }
        }).observe(box);
      }
    });
    const tLaidOut = performance.now();
    fitRenderer();
    plots.forEach((q) => { q.kd = emptyIndex(n); });
    // a new plot applies its options on the next animation frame and redraws then: the points go
    // in after that, or that redraw comes after their first and every point is drawn twice
    const mine = generation;
    const ready = plots.map((q) => new Promise((resolve) => {
      q.sp.subscribe("init", resolve, 1);
      setTimeout(resolve, 1000); // (should the event have gone already)
    }));
    Promise.all(ready)
      .then(() => mine === generation && Promise.all(plots.map((q) => q.sp.draw({ x: q.xs, y: q.ys, valueA: value },
        { zDataType: "categorical", spatialIndex: q.kd.data }))))
      .then((done) => {
        if (!done) return; // a newer payload replaced these panels meanwhile
        const tDrawn = performance.now();
        drawOverlays();
        applySelection(data.selection || []);
        painted(t0, "full");
        // then the indexes, a panel a task (input is handled between them); a panel answers
        // hover and click once its own is filled (data-drawn: drawn and interactive)
        const ms = (t) => (t - t0).toFixed(0);
        const phases = "fetched:" + ms(tFetched) + ",laid out:" + ms(tLaidOut) + ",drawn:" + ms(tDrawn);
        plots.reduce((prev, q) => prev.then(() => new Promise((resolve) => setTimeout(() => {
          if (mine === generation) {
            q.index = fillIndex(q.kd, q.xs, q.ys);
            q.div.dataset.drawn = String(n);
          }
          resolve();
        }, 0))), Promise.resolve()).then(() => {
          // where the time went (bench/browser_scale.py reads it)
          if (mine === generation) root.dataset.phases = phases + ",interactive:" + ms(performance.now());
        });
      });
    if (data.message) {
      const note = document.createElement("div");
      note.className = "atlas-note";
      note.textContent = data.message;
      root.appendChild(note);
    }
  }

  watch("value", render);
  render();
})();
