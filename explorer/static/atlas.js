// Side-by-side, linked scatter panels for the semantic atlas (runs inside a gr.HTML component).
// `element`, `props`, `trigger` and `watch` are provided by Gradio's gr.HTML js_on_load.
// props.value is a JSON string: {panels:[{key,title,x,y}], labels, classes, thumbs, selected,
// neighbors:{key:[idx]}, highlight:[idx], scores:[float], message}
(function () {
  // Colours and marker shapes come from the payload (explorer/plots.py class_styles), so the app
  // and the exported atlas.html agree; this fallback is only for an old payload.
  const FALLBACK = ["#4c78a8", "#f58518", "#54a24b", "#e45756"];
  const colourOf = (c) => (state && state.colors ? state.colors[c] : FALLBACK[c % FALLBACK.length]);
  const symbolOf = (c) => (state && state.symbols ? state.symbols[c] : "circle");
  const PANEL_HEIGHT = 420;
  let state = null;
  let selected = null;
  const root = element.querySelector(".atlas-root") || element;

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

  function overlayTraces(panel, sel, neighbors, highlight, gl) {
    const type = gl ? "scattergl" : "scatter";
    const pick = (ids) => ({ x: ids.map((i) => panel.x[i]), y: ids.map((i) => panel.y[i]), customdata: ids });
    return [
      Object.assign({ type, mode: "markers", name: "text match", showlegend: false, hoverinfo: "skip",
        marker: { size: 14, color: "rgba(0,0,0,0)", line: { color: "#111", width: 2.5 }, symbol: "circle-open" } },
        pick(highlight || [])),
      Object.assign({ type, mode: "markers", name: "neighbours", showlegend: false, hoverinfo: "skip",
        marker: { size: 15, color: "rgba(0,0,0,0)", line: { color: "#d62728", width: 2 }, symbol: "diamond-open" } },
        pick(neighbors || [])),
      Object.assign({ type, mode: "markers", name: "selected", showlegend: false, hoverinfo: "skip",
        marker: { size: 20, color: "#ffd400", line: { color: "#000", width: 1.5 }, symbol: "star" } },
        pick(sel === null || sel === undefined ? [] : [sel])),
    ];
  }

  function traces(panel, pIndex) {
    const n = state.labels.length;
    const gl = n > 2000;
    const out = [];
    state.classes.forEach((cls, c) => {
      const ids = [];
      for (let i = 0; i < n; i++) if (state.labels[i] === cls) ids.push(i);
      out.push({
        type: gl ? "scattergl" : "scatter", mode: "markers", name: cls, legendgroup: cls,
        showlegend: false, x: ids.map((i) => panel.x[i]), y: ids.map((i) => panel.y[i]),
        customdata: ids, hovertemplate: "%{customdata}: " + cls + "<extra></extra>",
        marker: { size: n > 2000 ? 4 : 8, color: colourOf(c), symbol: symbolOf(c), opacity: 0.85,
          line: { width: n > 2000 ? 0 : 0.5, color: "#fff" } },
      });
    });
    const nb = state.neighbors ? state.neighbors[panel.key] : [];
    return out.concat(overlayTraces(panel, state.selected, nb, state.highlight, gl));
  }

  function mark(div, panel) {
    div.dataset.selected = state.selected === null || state.selected === undefined ? "" : String(state.selected);
    div.dataset.neighbors = ((state.neighbors || {})[panel.key] || []).join(",");
    div.dataset.highlight = (state.highlight || []).join(",");
  }

  function highlightLocally(idx) {
    state.selected = idx;
    root.querySelectorAll(".atlas-panel").forEach((div, p) => {
      const panel = state.panels[p];
      const k = div.data.length - 1; // the "selected" overlay is the last trace
      Plotly.restyle(div, { x: [[panel.x[idx]]], y: [[panel.y[idx]]], customdata: [[idx]] }, [k]);
      mark(div, panel);
    });
  }

  function render() {
    if (typeof Plotly === "undefined") { setTimeout(render, 100); return; }
    let data = null;
    try { data = props.value ? JSON.parse(props.value) : null; } catch (e) { data = null; }
    root.querySelectorAll(".atlas-panel").forEach((d) => Plotly.purge(d));
    root.innerHTML = "";
    if (!data || !data.panels || !data.panels.length) {
      root.innerHTML = '<div class="atlas-empty">' + ((data && data.message) || "Open an image set to see its atlas.") + "</div>";
      return;
    }
    state = data;
    const legend = document.createElement("div");
    legend.className = "atlas-legend";
    data.classes.forEach((cls, c) => {
      const item = document.createElement("span");
      item.className = "atlas-legend-item";
      item.innerHTML = '<i style="background:' + colourOf(c) + '"></i>';
      if (symbolOf(c) !== "circle") item.title = "marker: " + symbolOf(c);
      item.appendChild(document.createTextNode(cls));
      legend.appendChild(item);
    });
    root.appendChild(legend);
    const row = document.createElement("div");
    row.className = "atlas-row";
    root.appendChild(row);
    const tip = tooltip();
    data.panels.forEach((panel, p) => {
      const div = document.createElement("div");
      div.className = "atlas-panel";
      div.dataset.space = panel.key;
      row.appendChild(div);
      const layout = {
        title: { text: panel.title, font: { size: 14 } }, height: PANEL_HEIGHT, autosize: true, margin: { l: 10, r: 10, t: 40, b: 10 },
        xaxis: { visible: false }, yaxis: { visible: false }, hovermode: "closest", dragmode: "pan",
        showlegend: false,
        plot_bgcolor: "#fafafa",
      };
      Plotly.newPlot(div, traces(panel, p), layout, { responsive: true, displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d"] });
      mark(div, panel);
      // panels drawn while hidden (another tab) or before layout get the wrong width: follow the
      // box's WIDTH only. The height is fixed (layout + CSS); resizing on every size change let
      // each resize feed the next and the panels grew taller while the page sat idle.
      if (window.ResizeObserver) {
        let lastWidth = div.offsetWidth;
        new ResizeObserver(() => {
          const w = div.offsetWidth;
          if (w > 0 && w !== lastWidth && div.data) { lastWidth = w; Plotly.Plots.resize(div); }
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
        const url = state.thumbs ? state.thumbs[idx] : null;
        if (!url) return;
        tip.querySelector("img").src = url;
        tip.querySelector(".atlas-tip-label").textContent = "#" + idx + " · " + state.labels[idx];
        const box = element.getBoundingClientRect();
        const e = ev.event || {};
        tip.style.left = ((e.clientX || 0) - box.left + 14) + "px";
        tip.style.top = ((e.clientY || 0) - box.top + 14) + "px";
        tip.style.display = "block";
      });
      div.on("plotly_unhover", () => { tip.style.display = "none"; });
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
