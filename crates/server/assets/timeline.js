// One timeline entry per run event: what happened, which agent did it, and for tool calls the
// arguments and results, collapsed until opened. Text from the server goes into text nodes only.

import { h, clock, duration, prettyJson } from './dom.js';

function agentChip(agent) {
  return h('span', { class: 'agent', 'data-agent': String(agent ?? '') }, String(agent ?? '?'));
}

function collapsible(summary, body, extraClass) {
  return h('details', { class: `payload ${extraClass || ''}`.trim() }, h('summary', {}, summary), body);
}

function jsonBlock(value) {
  return h('pre', { class: 'json' }, h('code', {}, prettyJson(value)));
}

/** Words for one event. */
function describe(event) {
  switch (event.type) {
    case 'agent_started':
      return [
        'Started',
        Array.isArray(event.plan) && event.plan.length
          ? h('span', { class: 'muted' }, ` · plan: ${event.plan.join(' → ')}`)
          : null,
      ];
    case 'agent_thinking':
      return [String(event.message ?? '')];
    case 'tool_executing':
      return [
        collapsible(
          ['Calls ', h('code', {}, String(event.tool)), h('span', { class: 'muted' }, ` (${event.tool_call_id})`)],
          [h('p', { class: 'payload-label' }, 'Arguments'), jsonBlock(event.args)],
          'tool-call',
        ),
      ];
    case 'tool_completed': {
      const ok = event.status === 'ok';
      return [
        collapsible(
          [
            h('span', { class: ok ? 'ok' : 'bad' }, ok ? '✓ ' : '✗ '),
            h('code', {}, String(event.tool)),
            ` ${String(event.result ?? '')}`,
            h('span', { class: 'muted' }, ` · ${duration(event.duration_ms)}`),
          ],
          [h('p', { class: 'payload-label' }, 'Result data'), jsonBlock(event.data)],
          ok ? 'tool-result' : 'tool-result tool-failed',
        ),
      ];
    }
    case 'agent_handoff':
      return [
        'Hands off to ',
        agentChip(event.to_agent),
        event.reason ? `: ${String(event.reason)}` : '',
      ];
    case 'subagent_started':
      return [`Starts work for ${String(event.parent_agent ?? 'the supervisor')}`];
    case 'subagent_completed':
      return [`Done: ${String(event.summary ?? '')}`];
    case 'progress':
      return [h('span', { class: 'percent' }, `${Math.round(event.percent ?? 0)}%`), ` ${String(event.message ?? '')}`];
    case 'response_delta':
      return [String(event.delta ?? '')];
    case 'agent_completed':
      return [h('span', { class: 'ok' }, '✓ '), `Answer ready in ${duration(event.duration_ms)}`];
    case 'agent_error':
      // The run card explains the error and what to do; the timeline just marks where it ended.
      return [h('span', { class: 'bad' }, '✗ '), `Stopped with ${String(event.error_code)}`];
    case 'agent_cancelled':
      return [h('span', { class: 'bad' }, '■ '), `Cancelled: ${String(event.reason ?? '')}`];
    default:
      return [`${event.type}`];
  }
}

/** The `<li>` for one event. `data-seq` ties it to the event, so each event has exactly one. */
export function timelineEntry(event) {
  const entry = h(
    'li',
    {
      class: `event ev-${String(event.type).replace(/[^a-z_]/g, '')}`,
      'data-seq': String(event.seq),
      'data-type': String(event.type),
    },
    h('time', { datetime: String(event.timestamp ?? '') }, clock(event.timestamp)),
    agentChip(event.agent),
    h('span', { class: 'what' }, describe(event)),
  );
  // Deltas are shown as the answer being written, not as a line each.
  if (event.type === 'response_delta') entry.hidden = true;
  return entry;
}
