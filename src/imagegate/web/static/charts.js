// Bar charts as inline SVG: one bar a day, a labelled axis, and a <title> per bar for hover and screen readers.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((s) => s * power >= value) ?? 10;
  return step * power;
}

/** ``points`` is [{label, value}] oldest first; ``format`` turns a value into text. */
export function barChart(points, { title, format = String }) {
  const width = 640;
  const height = 220;
  const pad = { top: 16, right: 12, bottom: 28, left: 52 };
  const max = niceMax(Math.max(0, ...points.map((p) => p.value)));
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const slot = innerW / Math.max(points.length, 1);
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}: ${format(total)} over ${points.length} days`,
    class: "bars",
  });
  for (const fraction of [0, 0.5, 1]) {
    const y = pad.top + innerH * (1 - fraction);
    root.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: pad.left - 8, y: y + 4, class: "axis", "text-anchor": "end" }, format(max * fraction)),
    );
  }
  points.forEach((point, i) => {
    const barH = (point.value / max) * innerH;
    const x = pad.left + i * slot + slot * 0.15;
    const bar = svg("rect", {
      x,
      y: pad.top + innerH - barH,
      width: Math.max(slot * 0.7, 1),
      height: Math.max(barH, point.value > 0 ? 2 : 0),
      rx: 2,
      class: "bar",
    });
    bar.append(svg("title", {}, `${point.label}: ${format(point.value)}`));
    root.append(bar);
    const labelEvery = Math.ceil(points.length / 6);
    if (i % labelEvery === 0 || i === points.length - 1) {
      root.append(svg("text", { x: x + slot * 0.35, y: height - 8, class: "axis", "text-anchor": "middle" }, point.label.slice(5)));
    }
  });
  return root;
}
