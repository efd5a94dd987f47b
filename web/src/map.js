// The page of `easy-oww freesound visualize`: sigma.js draws the library's graph with WebGL.
// The positions come from the library (computed in Python and stored), so the page only draws;
// the data sits in the page as columns (see freesound/visualize.py's map_data) to keep a
// 20,000-sample page small.
import Graph from "graphology";
import Sigma from "sigma";
import { EdgeLineProgram } from "sigma/rendering";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#bcbd22", "#393b79", "#ad494a", "#3182bd"];
const OTHER = "#9a9a9a";
const DIMMED = "#e4e4e4";
const $ = (id) => document.getElementById(id);

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function plural(count, noun) {
  return `${count.toLocaleString("en")} ${count === 1 ? noun : noun + "s"}`;
}

// One category per sample for the colour: its user, license, pack, or its most common tag
// (tags on nearly every sample say nothing and are passed over).
function categories(data, by) {
  const n = data.id.length;
  const values = new Array(n);
  if (by === "tag") {
    const counts = new Map();
    for (const tags of data.tags) for (const t of tags) counts.set(t, (counts.get(t) || 0) + 1);
    const rank = new Map([...counts.entries()]
      .filter(([, c]) => n < 20 || c <= n * 0.5)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .map(([t], i) => [t, i]));
    for (let i = 0; i < n; i++) {
      let best = -1;
      for (const t of data.tags[i]) {
        const r = rank.get(t);
        if (r !== undefined && (best < 0 || r < rank.get(best))) best = t;
      }
      values[i] = best < 0 ? "(no tag)" : data.tagNames[best];
    }
  } else if (by === "pack") {
    for (let i = 0; i < n; i++) values[i] = data.pack[i] < 0 ? "(no pack)" : data.packs[data.pack[i]];
  } else if (by === "license") {
    for (let i = 0; i < n; i++) values[i] = data.licenses[data.license[i]];
  } else {
    for (let i = 0; i < n; i++) values[i] = data.users[data.user[i]];
  }
  const counts = new Map();
  for (const v of values) counts.set(v, (counts.get(v) || 0) + 1);
  const top = [...counts.entries()]
    .filter(([v]) => !v.startsWith("("))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, PALETTE.length);
  const colourOf = new Map(top.map(([v], i) => [v, PALETTE[i]]));
  const legend = top.map(([v, c]) => ({ label: v, count: c, colour: colourOf.get(v) }));
  const rest = n - top.reduce((sum, [, c]) => sum + c, 0);
  if (rest > 0) legend.push({ label: "other", count: rest, colour: OTHER, other: true });
  return { values, legend, colour: (i) => colourOf.get(values[i]) || OTHER };
}

function sizes(data, by, degree) {
  const raw = data.id.map((_, i) => by === "degree" ? Math.log2(1 + degree[i])
                                                   : Math.log10(1 + data.downloads[i]));
  const max = raw.reduce((a, b) => Math.max(a, b), 1e-9);  // no spread: 100k arguments overflow
  const big = data.id.length > 5000 ? 7 : 10;
  return raw.map((v) => 1.5 + (big - 1.5) * v / max);
}

function main() {
  const data = JSON.parse($("map-data").textContent);
  const started = performance.now();
  const n = data.id.length;
  $("notice").textContent = data.notice;
  const degree = new Int32Array(n);
  for (const list of [data.edges, data.derived]) for (const i of list) degree[i]++;

  const graph = new Graph({ type: "undirected", multi: false, allowSelfLoops: false });
  for (let i = 0; i < n; i++) {
    graph.addNode(i, { x: data.x[i], y: data.y[i], size: 2, label: data.name[i], color: OTHER });
  }
  let edgeCount = 0;
  // Fainter lines as they multiply, so 100,000 edges are a haze the clusters show through.
  const alpha = Math.min(0.7, Math.max(0.08, 0.7 * Math.sqrt(3000 / Math.max(1,
    (data.edges.length + data.derived.length) / 2))));
  for (const [list, colour] of [[data.edges, `rgba(140,140,165,${alpha.toFixed(2)})`],
                                [data.derived, `rgba(215,150,90,${alpha.toFixed(2)})`]]) {
    for (let k = 0; k < list.length; k += 2) {
      if (!graph.hasEdge(list[k], list[k + 1])) {
        graph.addEdge(list[k], list[k + 1], { color: colour, size: 0.5 });
        edgeCount++;
      }
    }
  }

  // The header wraps on narrow windows: the map and the boxes start below it, whatever it takes.
  const fitUnderHeader = () => {
    const bottom = Math.ceil(document.querySelector("header").getBoundingClientRect().bottom);
    $("graph").style.top = `${bottom}px`;
    $("matches").style.top = `${bottom + 2}px`;
    $("panel").style.top = `${bottom + 10}px`;
  };
  fitUnderHeader();
  window.addEventListener("resize", fitUnderHeader);

  let state = { query: "", matches: null, legendPick: null, hovered: null, selected: null };
  let colours = null;
  const renderer = new Sigma(graph, $("graph"), {
    defaultEdgeType: "line",
    edgeProgramClasses: { line: EdgeLineProgram },
    hideEdgesOnMove: n > 3000,
    labelRenderedSizeThreshold: n > 5000 ? 9 : 7,
    labelDensity: 0.5,
    zIndex: true,
    minCameraRatio: 0.002,
    maxCameraRatio: 4,
    nodeReducer: (node, attrs) => {
      const i = Number(node);
      const out = { ...attrs };
      const picked = state.matches ? state.matches.has(i)
        : state.legendPick !== null ? colours.values[i] === state.legendPick
        || (state.legendPick === "other" && colours.colour(i) === OTHER) : true;
      if (!picked) {
        out.color = DIMMED;
        out.label = null;
        out.zIndex = 0;
      } else {
        out.zIndex = 1;
        if (state.matches) {
          // a match stands out even when its colour is the grey of "other"
          if (out.color === OTHER) out.color = "#333";
          out.size = attrs.size * 1.6;
          out.highlighted = true;
          out.forceLabel = state.matches.size <= 30;
        }
      }
      if (i === state.selected || i === state.hovered) { out.highlighted = true; out.zIndex = 2; }
      return out;
    },
    edgeReducer: (edge, attrs) => {
      if (state.matches === null && state.legendPick === null) return attrs;
      return { ...attrs, hidden: true };
    },
  });

  function recolour() {
    colours = categories(data, $("color-by").value);
    $("legend-by").textContent = $("color-by").value;
    const size = sizes(data, $("size-by").value, degree);
    graph.updateEachNodeAttributes((node, attrs) => {
      const i = Number(node);
      return { ...attrs, color: colours.colour(i), size: size[i] };
    });
    const legend = $("legend-items");
    legend.replaceChildren();
    for (const item of colours.legend) {
      const row = document.createElement("li");
      row.innerHTML = `<i style="background:${item.colour}"></i><span></span><small></small>`;
      row.querySelector("span").textContent = item.label;
      row.querySelector("small").textContent = item.count.toLocaleString("en");
      row.title = "Click to show only these samples; click again to show all";
      row.addEventListener("click", () => {
        state.legendPick = state.legendPick === item.label ? null : item.label;
        for (const li of legend.children) li.classList.remove("picked");
        if (state.legendPick !== null) row.classList.add("picked");
        renderer.refresh({ skipIndexation: true });
      });
      legend.appendChild(row);
    }
    state.legendPick = null;
    renderer.refresh();
  }

  // ---- search: name, user or tag; highlights the matches and zooms to them
  function search(query) {
    const q = query.trim().toLowerCase();
    state.query = q;
    const list = $("matches");
    list.replaceChildren();
    if (!q) {
      state.matches = null;
      $("search-status").textContent = "";
      document.body.dataset.matches = "";
      renderer.refresh({ skipIndexation: true });
      return;
    }
    const found = new Set();
    for (let i = 0; i < n; i++) {
      if (data.name[i].toLowerCase().includes(q)
          || data.users[data.user[i]].toLowerCase().includes(q)
          || data.tags[i].some((t) => data.tagNames[t].toLowerCase().includes(q))) {
        found.add(i);
      }
    }
    state.matches = found;
    $("search-status").textContent = plural(found.size, "match").replace("matchs", "matches");
    document.body.dataset.matches = [...found].slice(0, 1000).map((i) => data.id[i]).join(" ");
    let shown = 0;
    for (const i of found) {
      if (shown++ >= 50) break;
      const li = document.createElement("li");
      li.textContent = `${data.name[i]} — ${data.users[data.user[i]]}`;
      li.addEventListener("click", () => { select(i); zoomTo([i]); });
      list.appendChild(li);
    }
    renderer.refresh({ skipIndexation: true });
    if (found.size) zoomTo([...found]);
  }

  function zoomTo(indices) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const i of indices) {
      const d = renderer.getNodeDisplayData(String(i));
      if (!d) continue;
      x0 = Math.min(x0, d.x); x1 = Math.max(x1, d.x); y0 = Math.min(y0, d.y); y1 = Math.max(y1, d.y);
    }
    if (x0 === Infinity) return;
    const ratio = Math.min(1, Math.max(0.03, 1.3 * Math.max(x1 - x0, y1 - y0)));
    renderer.getCamera().animate({ x: (x0 + x1) / 2, y: (y0 + y1) / 2, ratio },
                                 { duration: 400 });
  }

  // ---- hover details and the click panel with its preview player
  const tip = $("tip");
  renderer.on("enterNode", ({ node, event }) => {
    const i = Number(node);
    state.hovered = i;
    const duration = data.duration[i] === null ? "" : `${data.duration[i].toFixed(1)} s, `;
    tip.textContent = `${data.name[i]} — ${data.users[data.user[i]]}, ${duration}` +
      `${plural(data.downloads[i], "download")}, ${data.licenses[data.license[i]]}`;
    tip.style.display = "block";
    tip.style.left = `${event.x + 14}px`;
    tip.style.top = `${event.y + 14}px`;
    document.body.style.cursor = "pointer";
  });
  renderer.on("leaveNode", () => {
    state.hovered = null;
    tip.style.display = "none";
    document.body.style.cursor = "";
  });
  renderer.on("clickNode", ({ node }) => select(Number(node)));
  renderer.on("clickStage", () => select(null));

  function select(i) {
    state.selected = i;
    const panel = $("panel");
    const audio = $("player");
    if (i === null) {
      panel.hidden = true;
      audio.pause();
      audio.removeAttribute("src");
      renderer.refresh({ skipIndexation: true });
      return;
    }
    $("p-name").textContent = data.name[i];
    $("p-user").textContent = data.users[data.user[i]];
    $("p-license").textContent = data.licenses[data.license[i]];
    $("p-duration").textContent = data.duration[i] === null ? "?"
      : `${data.duration[i].toFixed(1)} s`;
    $("p-downloads").textContent = data.downloads[i].toLocaleString("en");
    $("p-pack").textContent = data.pack[i] < 0 ? "—" : data.packs[data.pack[i]];
    $("p-tags").textContent = data.tags[i].map((t) => data.tagNames[t]).join(", ") || "—";
    $("p-link").href = `https://freesound.org/s/${data.id[i]}/`;
    $("p-link").textContent = `freesound.org/s/${data.id[i]}`;
    // preload="none": the preview is fetched only when the user presses play
    const preview = data.preview[i];
    if (preview) {
      audio.src = data.previewPrefix + preview;
      audio.hidden = false;
    } else {
      audio.removeAttribute("src");
      audio.hidden = true;
    }
    panel.hidden = false;
    document.body.dataset.selected = String(data.id[i]);
    renderer.refresh({ skipIndexation: true });
  }
  $("p-close").addEventListener("click", () => select(null));

  let timer = 0;
  $("search").addEventListener("input", (ev) => {
    clearTimeout(timer);
    timer = setTimeout(() => search(ev.target.value), 200);
  });
  $("search").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { clearTimeout(timer); search(ev.target.value); }
    if (ev.key === "Escape") { ev.target.value = ""; search(""); }
  });
  $("color-by").value = data.colorBy;
  $("size-by").value = data.sizeBy;
  $("color-by").addEventListener("change", recolour);
  $("size-by").addEventListener("change", recolour);
  $("zoom-in").addEventListener("click", () => renderer.getCamera().animatedZoom(1.6));
  $("zoom-out").addEventListener("click", () => renderer.getCamera().animatedUnzoom(1.6));
  $("zoom-fit").addEventListener("click", () => renderer.getCamera().animatedReset());

  const shown = data.total > n ? ` (the ${n} best connected of ${data.total})` : "";
  $("status").textContent = `${plural(n, "sample")}, ${plural(edgeCount, "edge")}${shown}`;
  renderer.once("afterRender", () => {
    document.body.dataset.drawn = `${n} ${edgeCount}`;
    document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  });
  recolour();
  window.easyOwwMap = { search, select, renderer, graph, data };
}

try {
  main();
} catch (err) {
  // Most likely no WebGL: say so on the page rather than leave it blank.
  const box = document.getElementById("graph");
  box.textContent = `The map cannot be drawn here: ${err && err.message ? err.message : err}. ` +
    "It needs a browser with WebGL.";
  box.className = "failed";
  throw err;
}
