// A small SVG line chart that gains points as they arrive: series of (x, y) points, and
// labelled horizontal reference lines (what `auto` compared the fine-tuning against).
import { svg } from "./dom.js";

const W = 560;
const H = 250;
const M = { left: 50, right: 128, top: 14, bottom: 34 };

function niceStep(span, count) {
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

// Enough decimals to tell the ticks apart: 0.25 steps need two, 0.5 steps one.
function decimals(step) {
  for (let d = 0; d < 6; d += 1) {
    if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-6) return d;
  }
  return 6;
}

export class LineChart {
  constructor(container, { xLabel = "epoch", fixed = null } = {}) {
    this.container = container;
    this.xLabel = xLabel;
    this.fixed = fixed; // [low, high] of y, e.g. [0, 1] for scores
    this.series = new Map(); // key -> {cls, label, points: Map(x -> y)}
    this.refs = [];
  }

  add(key, cls, label, x, y) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    if (!this.series.has(key)) this.series.set(key, { cls, label, points: new Map() });
    this.series.get(key).points.set(x, y);
  }

  reference(label, y, cls) {
    if (!Number.isFinite(y)) return;
    this.refs = this.refs.filter((r) => r.label !== label);
    this.refs.push({ label, y, cls });
  }

  get count() {
    let n = 0;
    for (const s of this.series.values()) n += s.points.size;
    return n;
  }

  render() {
    const xs = [];
    const ys = this.refs.map((r) => r.y);
    for (const s of this.series.values()) {
      for (const [x, y] of s.points) {
        xs.push(x);
        ys.push(y);
      }
    }
    this.container.dataset.points = String(this.count);
    if (!xs.length) return;
    let [low, high] = [Math.min(...ys), Math.max(...ys)];
    if (this.fixed) {
      low = Math.min(low, this.fixed[0]);
      high = Math.max(high, this.fixed[1]);
    } else {
      const pad = (high - low || Math.abs(high) || 1) * 0.1;
      low = Math.max(0, low - pad);
      high += pad;
    }
    const xMax = Math.max(1, ...xs);
    const xMin = Math.min(0, ...xs);
    const pw = W - M.left - M.right;
    const ph = H - M.top - M.bottom;
    const X = (x) => M.left + ((x - xMin) / (xMax - xMin || 1)) * pw;
    const Y = (y) => M.top + (1 - (y - low) / (high - low || 1)) * ph;

    const root = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
    const step = niceStep(high - low || 1, 4);
    for (let v = Math.ceil(low / step) * step; v <= high + 1e-9; v += step) {
      root.append(svg("line", { class: "grid", x1: M.left, x2: M.left + pw, y1: Y(v), y2: Y(v) }));
      const text = v.toFixed(decimals(step));
      root.append(svg("text", { class: "tick", x: M.left - 6, y: Y(v) + 4, "text-anchor": "end" }, text));
    }
    const xStep = Math.max(1, Math.ceil((xMax - xMin) / 10));
    for (let x = xMin; x <= xMax; x += xStep) {
      root.append(svg("text", { class: "tick", x: X(x), y: M.top + ph + 16, "text-anchor": "middle" }, x));
    }
    root.append(svg("line", { class: "axis", x1: M.left, x2: M.left + pw, y1: M.top + ph, y2: M.top + ph }));
    root.append(
      svg("text", { class: "axis-title", x: M.left + pw / 2, y: H - 2, "text-anchor": "middle" }, this.xLabel),
    );
    for (const r of this.refs) {
      root.append(svg("line", { class: `ref ${r.cls}`, x1: M.left, x2: M.left + pw, y1: Y(r.y), y2: Y(r.y) }));
      root.append(svg("text", { class: `ref-text ${r.cls}`, x: M.left + pw + 6, y: Y(r.y) + 4 }, r.label));
    }
    for (const s of this.series.values()) {
      const points = [...s.points].sort((a, b) => a[0] - b[0]);
      if (points.length > 1) {
        const path = points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
        root.append(svg("polyline", { class: `series ${s.cls}`, points: path }));
      }
      for (const [x, y] of points) {
        const dot = svg("circle", { class: `pt ${s.cls}`, cx: X(x), cy: Y(y), r: 3.5 });
        dot.append(svg("title", {}, `${s.label}, ${this.xLabel} ${x}: ${y.toFixed(4)}`));
        root.append(dot);
      }
    }
    this.container.replaceChildren(root);
  }
}
