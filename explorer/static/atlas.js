// Side-by-side, linked scatter panels for the semantic atlas (runs inside a gr.HTML component).
// `element`, `props`, `trigger` and `watch` are provided by Gradio's gr.HTML js_on_load.
// props.value is a JSON string (explorer/ui/atlas/payload.py): {base, panels:[{key,title,count,x,y}],
// n, ids (set index of each drawn point, null when all are drawn), labels, classes, colors,
// symbols, thumb_prefix, thumbs, note, selected, neighbors:{key:[idx]}, highlight:[idx],
// extra:{idx:{key:[x,y]}}, message, selection:[idx], overlap:{a,b,titles,k,own_group_left_out,
// values:[per drawn point]} or null}; or a click's update {base, update:true, selected, neighbors,
// highlight, extra, selection}, applied to the panels already drawn from the same base.
// Selection, neighbours and highlights are indices in the whole set; a big set is drawn as a sample.
// A lasso or box selection in any panel selects the same images in every panel (plotly's own
// selectedpoints) and is sent to the server as the "points_selected" event {indices, space};
// the shared selection of a payload (set over the API, say) is applied the same way.
(function () {
  // Colours and marker shapes come from the payload (explorer/plots.py class_styles), so the app
  // and the exported atlas.html agree; this fallback is only for an old payload.
  const FALLBACK = ["#4c78a8", "#f58518", "#54a24b", "#e45756"];
  const colourOf = (c) => (state && state.colors ? state.colors[c] : FALLBACK[c % FALLBACK.length]);
  const symbolOf = (c) => (state && state.symbols ? state.symbols[c] : "circle");
  const PANEL_HEIGHT = 420;
  const GL_ABOVE = 2000; // WebGL (scattergl) past this many drawn points
  let state = null;
  let pos = null; // set index -> position among the drawn points (null: the same)
  let where = null; // set index -> [trace, point in trace] of the drawn points
  const root = element.querySelector(".atlas-root") || element;
  // the last full payload, by base, so an update still finds its panels if the component remounts
  const CACHE = (window.__atlasFull = window.__atlasFull || {});

  // Plotly reads a subset of HTML and %{...} templates in names and hover text: a label is
  // shown as itself (every such character a numeric character reference, which Plotly decodes)
  function plotlyText(s) { return String(s).replace(/[&<>"'%]/g, (ch) => "&#" + ch.charCodeAt(0) + ";"); }
  // Another component (gr.Plot) may load its own, older plotly.js later and replace
  // window.Plotly: the panels keep the one the head script loaded (captured the first time it is
  // seen), and each panel is restyled, resized and purged by the library that drew it.
  function own() {
    if (!window.__atlasPlotly && typeof Plotly !== "undefined") window.__atlasPlotly = Plotly;
    return window.__atlasPlotly;
  }
  function lib(div) { return div.__plotly || own(); }
  function setIndex(p) { return state.ids ? state.ids[p] : p; }
  function xyOf(panel, i) {
    const p = pos ? pos.get(i) : i;
    if (p !== undefined && p < panel.x.length) return [panel.x[p], panel.y[p]];
    const e = state.extra && state.extra[String(i)];
    return e && e[panel.key] ? e[panel.key] : [null, null];
  }

  function tooltip() {
    let tip = element.querySelector(".atlas-tip");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "atlas-tip";
      tip.innerHTML = '<img alt="thumbnail"><div class="atlas-tip-label"></div>';
      element.appendChild(tip);
    }
    return tip;
  }

  // The selection, its neighbours and text matches are drawn on an SVG layer above each panel,
  // placed with plotly's own axes: moving them costs a few elements, where restyling plotly
  // traces redraws every point (seconds per click at 10k points).
  const SVGNS = "http://www.w3.org/2000/svg";
  function overlayOf(div) {
    let svg = div.querySelector("svg.atlas-overlay");
    if (!svg) {
      svg = document.createElementNS(SVGNS, "svg");
      svg.setAttribute("class", "atlas-overlay");
      div.appendChild(svg);
    }
    return svg;
  }

  function starPoints(cx, cy, r) {
    const pts = [];
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5, rr = k % 2 ? r * 0.45 : r;
      pts.push((cx + rr * Math.cos(a)).toFixed(1) + "," + (cy + rr * Math.sin(a)).toFixed(1));
    }
    return pts.join(" ");
  }

  function drawOverlay(div, panel) {
    const fl = div._fullLayout;
    if (!fl || !fl.xaxis || !fl._size || !state) return;
    const svg = overlayOf(div);
    svg.style.display = "";
    const xa = fl.xaxis, ya = fl.yaxis, sz = fl._size;
    const at = (i) => {
      const q = xyOf(panel, i);
      if (q[0] === null || q[0] === undefined) return null;
      const px = sz.l + xa.d2p(q[0]), py = sz.t + ya.d2p(q[1]);
      const inside = px >= sz.l - 1 && px <= sz.l + sz.w + 1 && py >= sz.t - 1 && py <= sz.t + sz.h + 1;
      return inside ? [px, py] : null;
    };
    let out = "";
    (state.highlight || []).forEach((i) => {
      const p = at(i);
      if (p) out += '<circle class="atlas-hl" cx="' + p[0] + '" cy="' + p[1] + '" r="7" fill="none" stroke="#111" stroke-width="2.5"/>';
    });
    ((state.neighbors || {})[panel.key] || []).forEach((i) => {
      const p = at(i);
      if (!p) return;
      const d = 7.5, pts = [[p[0], p[1] - d], [p[0] + d, p[1]], [p[0], p[1] + d], [p[0] - d, p[1]]];
      out += '<polygon class="atlas-nb" points="' + pts.map((q) => q.join(",")).join(" ") + '" fill="none" stroke="#d62728" stroke-width="2"/>';
    });
    if (state.selected !== null && state.selected !== undefined) {
      const p = at(state.selected);
      if (p) out += '<polygon class="atlas-sel" points="' + starPoints(p[0], p[1], 10) + '" fill="#ffd400" stroke="#000" stroke-width="1.5"/>';
    }
    svg.innerHTML = out;
  }

  function drawOverlays() {
    root.querySelectorAll(".atlas-panel").forEach((div, p) => {
      drawOverlay(div, state.panels[p]);
      mark(div, state.panels[p]);
    });
  }

  // Overlap colouring: 0 (no neighbour in common) red ... 1 (the same neighbours) blue.
  const AGREE = [[0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"], [1, "#2166ac"]];

  function traces(panel) {
    const n = state.labels.length;
    const gl = n > GL_ABOVE;
    const byClass = new Map(state.classes.map((cls, c) => [cls, []]));
    for (let p = 0; p < n; p++) { const l = byClass.get(state.labels[p]); if (l) l.push(p); }
    const ov = state.overlap;
    const out = [];
    where = new Map();
    state.classes.forEach((cls, c) => {
      const ps = byClass.get(cls);
      ps.forEach((p, j) => where.set(setIndex(p), [c, j]));
      const marker = { size: n > GL_ABOVE ? (n > 15000 ? 3 : 4) : 8, color: colourOf(c), symbol: symbolOf(c),
        opacity: n > 15000 ? 0.7 : 0.85, line: { width: n > GL_ABOVE ? 0 : 0.5, color: "#fff" } };
      let hover = "%{customdata}: " + plotlyText(cls) + "<extra></extra>";
      if (ov) {
        Object.assign(marker, { color: ps.map((p) => ov.values[p]), colorscale: AGREE, cmin: 0, cmax: 1,
          opacity: 0.95, line: { width: n > GL_ABOVE ? 0 : 0.5, color: "#555" } });
        hover = "%{customdata}: " + plotlyText(cls) + " · %{marker.color:.0%} of " + ov.k + " neighbours shared<extra></extra>";
      }
      out.push({
        type: gl ? "scattergl" : "scatter", mode: "markers", name: plotlyText(cls), legendgroup: "class-" + c,
        showlegend: false, x: ps.map((p) => panel.x[p]), y: ps.map((p) => panel.y[p]),
        customdata: ps.map(setIndex), hovertemplate: hover, marker: marker,
        selected: { marker: { opacity: 1 } }, unselected: { marker: { opacity: 0.12 } },
      });
    });
    return out;
  }

  // The shared selection: plotly's selectedpoints on every panel's traces (the others fade).
  function selectionKey(sel) { return (sel || []).join(","); }
  function applySelection(sel, except) {
    if (!state || !where) return;
    state.selection = sel || [];
    const key = selectionKey(state.selection);
    const drawn = state.selection.filter((i) => where.has(i)).length;
    root.querySelectorAll(".atlas-panel").forEach((div) => {
      if (!div.data) return;
      const fresh = div.dataset.selection === undefined; // just drawn: nothing selected yet
      if (div !== except && div.dataset.selection !== key && !(fresh && !key)) {
        const per = div.data.map(() => []);
        state.selection.forEach((i) => { const w = where.get(i); if (w) per[w[0]].push(w[1]); });
        const value = state.selection.length ? per : div.data.map(() => null);
        // a lasso outline drawn here earlier goes first (plotly would re-apply it), quietly
        div.__quiet = true;
        const outlined = div.layout && div.layout.selections && div.layout.selections.length;
        const before = outlined ? lib(div).relayout(div, { selections: [] }) : Promise.resolve();
        before.then(() => lib(div).restyle(div, { selectedpoints: value }))
          .finally(() => setTimeout(() => { div.__quiet = false; }, 0));
      }
      div.dataset.selection = key;
      div.dataset.selectionDrawn = String(drawn);
    });
  }

  function painted(t0, what) {
    // two animation frames after the draw: the browser has painted it
    requestAnimationFrame(() => requestAnimationFrame(() => {
      root.dataset.renderMs = (performance.now() - t0).toFixed(1);
      root.dataset.rendered = what + ":" + (state ? state.base : "") + ":" + String(state && state.selected);
    }));
  }

  function mark(div, panel) {
    div.dataset.selected = state.selected === null || state.selected === undefined ? "" : String(state.selected);
    div.dataset.neighbors = ((state.neighbors || {})[panel.key] || []).join(",");
    div.dataset.highlight = (state.highlight || []).join(",");
  }

  function highlightLocally(idx) {
    state.selected = idx;
    drawOverlays();
  }

  function render() {
    if (!own()) { setTimeout(render, 100); return; }
    const t0 = performance.now();
    let data = null;
    try { data = props.value ? JSON.parse(props.value) : null; } catch (e) { data = null; }
    if (data && data.update) {
      const drawn = state && state.base === data.base && root.querySelector(".atlas-panel");
      if (drawn) { // a click's answer: move the overlays, keep the points
        if ("selected" in data) { // (a selection's update carries the selection only)
          Object.assign(state, { selected: data.selected, neighbors: data.neighbors,
            highlight: data.highlight, extra: data.extra });
          drawOverlays();
        }
        if (data.selection) applySelection(data.selection);
        painted(t0, "update");
        return;
      }
      const full = CACHE[data.base];
      if (!full) return; // nothing drawn to update: keep what is on screen
      data = "selected" in data
        ? Object.assign({}, full, { selected: data.selected, neighbors: data.neighbors,
          highlight: data.highlight, extra: data.extra, message: data.message,
          selection: data.selection || full.selection })
        : Object.assign({}, full, { selection: data.selection || full.selection });
    } else if (data && data.base && data.panels && data.panels.length) {
      for (const k of Object.keys(CACHE)) delete CACHE[k];
      CACHE[data.base] = data;
    }
    root.querySelectorAll(".atlas-panel").forEach((d) => lib(d).purge(d));
    root.innerHTML = "";
    if (!data || !data.panels || !data.panels.length) {
      root.innerHTML = '<div class="atlas-empty">' + ((data && data.message) || "Open an image set to see its atlas.") + "</div>";
      return;
    }
    state = data;
    pos = data.ids ? new Map(data.ids.map((i, p) => [i, p])) : null;
    if (data.note) {
      const note = document.createElement("div");
      note.className = "atlas-sample-note";
      note.textContent = data.note;
      root.appendChild(note);
    }
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
        if (symbolOf(c) !== "circle") item.title = "marker: " + symbolOf(c);
        item.appendChild(document.createTextNode(cls));
        legend.appendChild(item);
      });
    }
    root.appendChild(legend);
    const row = document.createElement("div");
    row.className = "atlas-row";
    const np = data.panels.length;
    row.dataset.cols = String(np <= 4 ? np : np <= 6 ? 3 : 4); // up to four a row
    root.appendChild(row);
    const tip = tooltip();
    data.panels.forEach((panel, p) => {
      const div = document.createElement("div");
      div.className = "atlas-panel";
      div.dataset.space = panel.key;
      row.appendChild(div);
      const layout = {
        title: { text: panel.title + (panel.count ? "<br><span style='font-size:11px;color:#6b7280'>" + panel.count + "</span>" : ""), font: { size: 14 } }, height: PANEL_HEIGHT, autosize: true, margin: { l: 10, r: 10, t: panel.count ? 52 : 40, b: 10 },
        xaxis: { visible: false }, yaxis: { visible: false }, hovermode: "closest", dragmode: "pan",
        showlegend: false,
        plot_bgcolor: "#fafafa",
      };
      div.__plotly = own(); // this panel's library, whatever window.Plotly becomes later
      div.__plotly.newPlot(div, traces(panel), layout, { responsive: true, displaylogo: false,
        modeBarButtonsToRemove: ["toImage", "zoomIn2d", "zoomOut2d", "autoScale2d"] });
      drawOverlay(div, panel);
      mark(div, panel);
      div.on("plotly_afterplot", () => drawOverlay(div, panel)); // zoom, pan, resize
      div.on("plotly_relayouting", () => { overlayOf(div).style.display = "none"; });
      // panels drawn while hidden (another tab) or before layout get the wrong width: follow the
      // box's WIDTH only. The height is fixed (layout + CSS); resizing on every size change let
      // each resize feed the next and the panels grew taller while the page sat idle.
      if (window.ResizeObserver) {
        let lastWidth = div.offsetWidth;
        new ResizeObserver(() => {
          const w = div.offsetWidth;
          if (w > 0 && w !== lastWidth && div.data) { lastWidth = w; lib(div).Plots.resize(div); }
        }).observe(div);
      }
      div.on("plotly_click", (ev) => {
        const pt = ev.points && ev.points[0];
        if (!pt || pt.customdata === undefined) return;
        const idx = Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata;
        tip.style.display = "none"; // the click re-renders the galleries: no tooltip left behind
        highlightLocally(idx);
        trigger("point_click", { index: idx });
      });
      div.on("plotly_hover", (ev) => {
        const pt = ev.points && ev.points[0];
        if (!pt || pt.customdata === undefined) return;
        const idx = Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata;
        // the thumbnail is fetched now, on hover: the payload holds its URL, not the image
        const p = pos ? pos.get(idx) : idx;
        const url = state.thumbs && p !== undefined ? (state.thumb_prefix || "") + state.thumbs[p] : null;
        if (!url) return;
        tip.querySelector("img").src = url;
        tip.querySelector(".atlas-tip-label").textContent = "#" + idx + " · " + state.labels[p];
        const box = element.getBoundingClientRect();
        const e = ev.event || {};
        tip.style.left = ((e.clientX || 0) - box.left + 14) + "px";
        tip.style.top = ((e.clientY || 0) - box.top + 14) + "px";
        tip.style.display = "block";
      });
      div.on("plotly_unhover", () => { tip.style.display = "none"; });
      // a lasso or box selection here selects the same images in every panel
      div.on("plotly_selected", (ev) => {
        if (div.__quiet || !ev || !ev.points) return;
        const seen = new Set();
        ev.points.forEach((pt) => {
          const idx = Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata;
          if (idx !== undefined && idx !== null) seen.add(idx);
        });
        const sel = [...seen].sort((a, b) => a - b);
        tip.style.display = "none";
        applySelection(sel, div);
        trigger("points_selected", { indices: sel, space: panel.key });
      });
      div.on("plotly_deselect", () => {
        if (div.__quiet) return;
        applySelection([], div);
        trigger("points_selected", { indices: [], space: panel.key });
      });
    });
    applySelection(data.selection || []);
    if (data.message) {
      const note = document.createElement("div");
      note.className = "atlas-note";
      note.textContent = data.message;
      root.appendChild(note);
    }
    painted(t0, "full");
  }

  watch("value", render);
  render();
})();
