// Bar charts as inline SVG: one bar a day, a labelled axis, and a <title> per bar for hover and screen readers.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Axis ticks from 0 to a round maximum; for counts (``integer``) every tick is a whole number. */
export function ticks(value, { integer = false, count = 4 } = {}) {
  if (!(value > 0)) return integer ? [0, 1] : [0, 1];
  const rough = value / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  let step = [1, 2, 2.5, 5, 10].map((s) => s * power).find((s) => s >= rough) ?? 10 * power;
  if (integer) step = Math.max(1, Math.ceil(step));
  const top = Math.ceil(value / step) * step;
  const out = [];
  for (let v = 0; v <= top + step / 2; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** ``points`` is [{label, value}] oldest first; ``format`` turns a value into text. */
export function barChart(points, { title, format = String, integer = false, compact = false }) {
  // On a phone the chart is drawn narrower in the same viewBox units, so its text stays readable when scaled.
  const width = compact ? 360 : 640;
  const height = compact ? 240 : 220;
  const pad = { top: 16, right: 10, bottom: 30, left: compact ? 46 : 52 };
  const steps = ticks(Math.max(0, ...points.map((p) => p.value)), { integer });
  const max = steps.at(-1);
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
  for (const tick of steps) {
    const y = pad.top + innerH * (1 - tick / max);
    root.append(
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }),
      svg("text", { x: pad.left - 6, y: y + 4, class: compact ? "axis big" : "axis", "text-anchor": "end" }, format(tick)),
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
    // Every few days a date; the last day always, flush right so it is not cut, unless it would touch the one before.
    const labelEvery = Math.ceil(points.length / (compact ? 4 : 6));
    const last = i === points.length - 1;
    if (i % labelEvery === 0 ? !(i > points.length - 1 - labelEvery / 2 && !last) : last) {
      const label = point.label.slice(5).replace("-", "/");
      const at = last ? { x: x + slot * 0.7, "text-anchor": "end" } : { x: x + slot * 0.35, "text-anchor": "middle" };
      root.append(svg("text", { ...at, y: height - 8, class: compact ? "axis big" : "axis" }, label));
    }
  });
  return root;
}
