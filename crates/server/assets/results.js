// The results a person would rather look at than read: a chart of spend by day with the anomaly
// windows marked, the anomalies in a sentence each, and the recommendations with their monthly
// savings. Drawn from the structured `data` of tool_completed and the `report` of
// agent_completed, never from the Markdown text. Inline SVG, no chart library.

import { h, s, clear, dollars, dollarsWhole } from './dom.js';

/** The chart is drawn at the width it will be shown, so its labels stay at their CSS size. */
const DEFAULT_WIDTH = 720;
const HEIGHT = 240;
const MARGIN = { top: 22, right: 12, bottom: 30, left: 64 };

let chartCount = 0;

/** A round number at or above `value` for the top of the axis: 1, 2, 2.5 or 5 times a power of ten. */
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

const day = (text) => String(text ?? '').slice(0, 10);

/** An anomaly's figures, whichever of the documented names the report uses. */
function figures(anomaly) {
  const actual = anomaly.actual_usd ?? anomaly.actual;
  const expected = anomaly.expected_usd ?? anomaly.expected;
  const impact = anomaly.impact_usd ?? (Number.isFinite(actual) && Number.isFinite(expected) ? actual - expected : undefined);
  return { actual, expected, impact };
}

function windowsIn(days, anomalies) {
  const dates = days.map((d) => day(d.date));
  return (anomalies || [])
    .map((anomaly) => {
      const start = day(anomaly.start);
      const end = day(anomaly.end || anomaly.start);
      const first = dates.findIndex((date) => date >= start);
      let last = -1;
      dates.forEach((date, index) => {
        if (date <= end) last = index;
      });
      return { anomaly, first, last };
    })
    .filter((w) => w.first !== -1 && w.last >= w.first);
}

/**
 * The spend-by-day chart with anomaly windows shaded, `width` CSS pixels wide; `null` when there
 * is too little to draw.
 */
export function spendChart(days, anomalies, width = DEFAULT_WIDTH) {
  const points = (days || []).filter((d) => d && Number.isFinite(d.cost_usd));
  if (points.length < 2) return null;
  const WIDTH = Math.max(280, Math.min(1200, Math.round(width)));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = niceCeiling(Math.max(...points.map((d) => d.cost_usd)));
  const step = plotWidth / points.length;
  const x = (index) => MARGIN.left + index * step;
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const windows = windowsIn(points, anomalies);
  const anomalous = new Set();
  windows.forEach((w) => {
    for (let k = w.first; k <= w.last; k += 1) anomalous.add(k);
  });

  chartCount += 1;
  const titleId = `chart-title-${chartCount}`;
  const descId = `chart-desc-${chartCount}`;
  // Drawn for its width: it may shrink with the page, never blow up past the size it was drawn.
  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    width: WIDTH,
    height: HEIGHT,
    class: 'chart',
    role: 'img',
    'aria-labelledby': `${titleId} ${descId}`,
  });
  const total = points.reduce((sum, d) => sum + d.cost_usd, 0);
  const peak = points.reduce((best, d) => (d.cost_usd > best.cost_usd ? d : best), points[0]);
  svg.append(
    s('title', { id: titleId }, `Spend by day, ${day(points[0].date)} to ${day(points[points.length - 1].date)}`),
    s(
      'desc',
      { id: descId },
      `${points.length} days, ${dollars(total)} in total; the peak is ${dollars(peak.cost_usd)} on ${day(peak.date)}.` +
        (windows.length ? ` ${windows.length} anomaly window(s) shaded.` : ''),
    ),
  );

  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    svg.append(
      s('line', { class: 'grid', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value) }),
      s('text', { class: 'axis', x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, dollarsWhole(value)),
    );
  }

  for (const w of windows) {
    const left = x(w.first);
    const right = x(w.last + 1);
    const { expected: expectedUsd, impact } = figures(w.anomaly);
    svg.append(
      s('rect', {
        class: 'anomaly-window',
        x: left,
        y: MARGIN.top,
        width: Math.max(right - left, 2),
        height: plotHeight,
      }),
    );
    const daysInWindow = w.last - w.first + 1;
    if (Number.isFinite(expectedUsd)) {
      const expected = y(Math.min(top, expectedUsd / daysInWindow));
      svg.append(s('line', { class: 'expected', x1: left, x2: right, y1: expected, y2: expected }));
    }
    const labelRight = left > WIDTH / 2;
    svg.append(
      s(
        'text',
        {
          class: 'anomaly-label',
          x: labelRight ? left - 4 : right + 4,
          y: MARGIN.top + 10,
          'text-anchor': labelRight ? 'end' : 'start',
        },
        `anomaly ${Number.isFinite(impact) ? `+${dollarsWhole(impact)}` : ''}`,
      ),
    );
  }

  points.forEach((d, index) => {
    const barHeight = Math.max(MARGIN.top + plotHeight - y(d.cost_usd), 1);
    const requests = Number.isFinite(d.requests) ? `, ${d.requests.toLocaleString('en-US')} requests` : '';
    svg.append(
      s(
        'rect',
        {
          class: anomalous.has(index) ? 'bar bar-anomalous' : 'bar',
          x: x(index) + step * 0.15,
          y: MARGIN.top + plotHeight - barHeight,
          width: Math.max(step * 0.7, 1),
          height: barHeight,
        },
        s('title', {}, `${day(d.date)}: ${dollars(d.cost_usd)}${requests}`),
      ),
    );
  });

  const labelled = new Set([0, Math.floor((points.length - 1) / 2), points.length - 1]);
  for (const index of labelled) {
    svg.append(
      s(
        'text',
        { class: 'axis', x: x(index) + step / 2, y: HEIGHT - 10, 'text-anchor': index === 0 ? 'start' : index === points.length - 1 ? 'end' : 'middle' },
        day(points[index].date).slice(5),
      ),
    );
  }

  return h(
    'figure',
    { class: 'chart-figure' },
    h('figcaption', {}, h('strong', {}, 'Spend by day'), ` · ${points.length} days, ${dollars(total)} · peak ${dollars(peak.cost_usd)} on ${day(peak.date)}`),
    svg,
    windows.length ? h('p', { class: 'legend' }, h('span', { class: 'swatch swatch-anomaly' }), ' anomaly window  ', h('span', { class: 'swatch swatch-expected' }), ' expected spend') : null,
  );
}

function contributorsText(anomaly) {
  const parts = (anomaly.contributors || [])
    .slice(0, 3)
    .map((c) => {
      const share = Number.isFinite(c.share_of_excess) ? ` (${(c.share_of_excess * 100).toFixed(1)}%)` : '';
      return `${c.dimension} ${c.key}${share}`;
    });
  return parts.length ? ` Drivers: ${parts.join(', ')}.` : '';
}

/** How many anomalies the list shows, the costliest first, as the answer does. */
const SHOWN_ANOMALIES = 5;

/**
 * One sentence per anomaly, the costliest five: when, actual against expected, the excess and
 * what drove it; then how many lesser ones were left out.
 */
export function anomalyList(anomalies) {
  if (!Array.isArray(anomalies) || anomalies.length === 0) return null;
  const size = (a) => {
    const impact = figures(a).impact;
    return Number.isFinite(impact) ? Math.abs(impact) : 0;
  };
  const ranked = [...anomalies].sort((a, b) => size(b) - size(a));
  const shown = ranked.slice(0, SHOWN_ANOMALIES);
  const left = ranked.length - shown.length;
  return h(
    'section',
    { class: 'anomalies' },
    h('h3', {}, anomalies.length === 1 ? 'Anomaly' : `Anomalies (${anomalies.length})`),
    h(
      'ul',
      {},
      shown.map((a) => {
        const when = day(a.start) === day(a.end || a.start) ? day(a.start) : `${day(a.start)} to ${day(a.end)}`;
        const { actual, expected, impact } = figures(a);
        return h(
          'li',
          {},
          h('strong', {}, when),
          `: ${dollars(actual)} spent against ${dollars(expected)} expected, `,
          h('strong', {}, `${dollars(impact)} above the baseline`),
          '.',
          contributorsText(a),
        );
      }),
    ),
    left > 0 ? h('p', { class: 'left-out' }, `${left} lesser anomal${left === 1 ? 'y' : 'ies'} left out.`) : null,
  );
}

/**
 * The recommendations with their monthly savings, effort and risk; each one's steps and
 * assumptions one click away (its evidence is in the answer's text).
 */
export function recommendationTable(recommendations, totalMonthly) {
  if (!Array.isArray(recommendations) || recommendations.length === 0) return null;
  const total = Number.isFinite(totalMonthly)
    ? totalMonthly
    : recommendations.reduce((sum, r) => sum + (Number.isFinite(r.monthly_savings_usd) ? r.monthly_savings_usd : 0), 0);
  const rows = recommendations.map((r, index) => {
    const steps = Array.isArray(r.steps) ? r.steps : [];
    const assumptions = Array.isArray(r.assumptions) ? r.assumptions : [];
    const what = [
      steps.length ? `${steps.length} step${steps.length === 1 ? '' : 's'}` : null,
      assumptions.length ? `${assumptions.length} assumption${assumptions.length === 1 ? '' : 's'}` : null,
    ].filter(Boolean);
    const details = what.length
      ? h(
          'details',
          { class: 'rec-details' },
          h('summary', {}, `How: ${what.join(', ')}`),
          steps.length ? h('ol', { class: 'steps' }, steps.map((step) => h('li', {}, String(step)))) : null,
          assumptions.length ? h('p', { class: 'assumes' }, 'Assumes:') : null,
          assumptions.length ? h('ul', { class: 'assumptions' }, assumptions.map((a) => h('li', {}, String(a)))) : null,
        )
      : null;
    // data-label names the column when a narrow screen stacks each row into a card.
    return h(
      'tr',
      {},
      h('td', { class: 'num rank' }, String(index + 1)),
      h('td', { class: 'rec' }, h('span', { class: 'rec-title' }, String(r.title ?? r.lever ?? 'Recommendation')), details),
      h('td', { class: 'num savings', 'data-label': 'Monthly savings' }, dollars(r.monthly_savings_usd)),
      h('td', { class: 'effort', 'data-label': 'Effort' }, String(r.effort ?? '—')),
      h('td', { class: 'risk', 'data-label': 'Risk' }, String(r.risk ?? '—')),
    );
  });
  return h(
    'section',
    { class: 'recommendations' },
    h('h3', {}, 'Recommendations'),
    h(
      'div',
      { class: 'table-wrap', tabindex: '0' },
      h(
        'table',
        { class: 'recs' },
        h('caption', {}, `${recommendations.length} recommendation(s) worth ${dollars(total)} per month`),
        h(
          'thead',
          {},
          h('tr', {}, h('th', { scope: 'col', class: 'num' }, '#'), h('th', { scope: 'col' }, 'Recommendation'), h('th', { scope: 'col', class: 'num' }, 'Monthly savings'), h('th', { scope: 'col' }, 'Effort'), h('th', { scope: 'col' }, 'Risk')),
        ),
        h('tbody', {}, rows),
        h('tfoot', {}, h('tr', {}, h('th', { scope: 'row', colspan: '2' }, 'Total per month'), h('td', { class: 'num savings total' }, dollars(total)), h('td', { colspan: '2' }))),
      ),
    ),
  );
}

/**
 * Redraws `container` from what is known so far: `{days, anomalies, recommendations,
 * totalMonthlySavings, answered}`; each part is drawn only when present. Once the answer is there
 * (`answered`), its own anomaly table replaces the list drawn while the run went on.
 */
export function renderResults(container, results) {
  // The box itself may be hidden or folded (no size); the run card around it is laid out.
  const card = container.closest('article.run') || container.parentElement;
  const width = card && card.clientWidth > 0 ? card.clientWidth - 34 : DEFAULT_WIDTH;
  clear(container);
  const parts = [
    spendChart(results.days, results.anomalies, width),
    results.answered ? null : anomalyList(results.anomalies),
    recommendationTable(results.recommendations, results.totalMonthlySavings),
  ].filter(Boolean);
  container.hidden = parts.length === 0;
  container.append(...parts);
}
