// The chat page: sign in, ask, watch each run's timeline fill, read the results and the answer,
// cancel, browse past conversations, and keep going across dropped connections.
//
// State lives here; connection.js owns the socket, timeline.js / results.js / markdown.js draw.
// Each run's view keeps the last `seq` it drew: an event at or below it is a replayed duplicate
// and is skipped, a gap asks the server to `resume` from it, so every event appears exactly once.

import { h, clear, ago, randomId } from './dom.js';
import { Connection, checkToken } from './connection.js';
import { timelineEntry } from './timeline.js';
import { renderResults } from './results.js';
import { renderMarkdown } from './markdown.js';

const TOKEN_KEY = 'agentwire.token';
const TERMINAL = new Set(['agent_completed', 'agent_error', 'agent_cancelled']);

/** Error codes in plain words: what happened and what to do. */
const ADVICE = {
  AUTH_REQUIRED: 'you are not signed in. Sign in with a token and try again.',
  AUTH_FAILED: 'your token was refused. Sign in again with a fresh token.',
  AUTH_EXPIRED: 'your token expired. Sign in again with a fresh token; runs keep going on the server.',
  FORBIDDEN: 'your token does not allow this. Ask for a token with the needed permission.',
  INVALID_MESSAGE: 'the server could not read the request. Rephrase the question and send it again.',
  UNKNOWN_MESSAGE_TYPE: 'the page and the server disagree about the protocol. Reload the page.',
  AGENT_NOT_FOUND: 'the server does not know that agent. Reload the page.',
  RUN_NOT_FOUND: 'that run is not known to the server for your account. Reload the page to see your history.',
  RUN_CONFLICT: 'this conversation already has a run going. Wait for it to finish or cancel it, then ask again.',
  RATE_LIMITED: 'too many of your runs are going at once. Wait for one to finish or cancel one, then ask again.',
  PAYLOAD_TOO_LARGE: 'the message is too long. Shorten it and send it again.',
  NO_DATA: 'there is no usage data to analyse for this. Load usage data first (see the message), then ask again.',
  TIMEOUT: 'the run took longer than the server allows. Narrow the question (a shorter timeframe, one team) and ask again.',
  INTERRUPTED: 'the server stopped while the run was going. Ask again.',
  UNAVAILABLE: 'the server is restarting or shutting down. Try again in a moment.',
  INTERNAL: 'something broke on the server. Try again; if it keeps happening, give the operator the reference in the message.',
};

function advice(code) {
  return ADVICE[code] || 'something went wrong. Try again.';
}

const $ = (id) => document.getElementById(id);

const app = {
  token: null,
  conn: null,
  /** The conversation on screen; new conversations get an id from the page. */
  threadId: null,
  /** Views of the runs on screen, by run id. */
  runs: new Map(),
  /** Questions sent and not yet accepted, by request id. */
  pending: new Map(),
  /** Bumped whenever another conversation is shown, so late history loads are dropped. */
  view: 0,
  /** Set when an example is clicked; the first timeline entry of its run closes the measure. */
  measuring: null,
};

// ------------------------------------------------------------------------------------------
// Alerts and the connection banner.

function showAlert(title, detail, actions = []) {
  const box = $('alerts');
  const text = `${title} ${detail || ''}`;
  for (const existing of box.children) {
    if (existing.dataset.text === text) return;
  }
  const close = h('button', { type: 'button', class: 'dismiss', 'aria-label': 'Dismiss this message' }, '×');
  const alert = h(
    'div',
    { class: 'alert', 'data-text': text },
    h('p', {}, h('strong', {}, title), detail ? ` ${detail}` : ''),
    actions,
    close,
  );
  close.addEventListener('click', () => alert.remove());
  box.append(alert);
}

function clearAlerts() {
  clear($('alerts'));
}

let countdown = null;

function setConnectionState(update) {
  const pill = $('conn-status');
  const banner = $('banner');
  clearInterval(countdown);
  pill.dataset.state = update.state;
  switch (update.state) {
    case 'connecting':
      pill.textContent = update.attempt ? 'Reconnecting…' : 'Connecting…';
      break;
    case 'open': {
      const reconnected = update.connects > 1;
      pill.textContent = reconnected ? 'Live · reconnected' : 'Live';
      document.body.dataset.connects = String(update.connects);
      if (reconnected) {
        const running = [...app.runs.values()].filter((run) => !run.terminal).length;
        banner.hidden = false;
        banner.dataset.kind = 'ok';
        banner.textContent = running
          ? `Connection restored. ${running} run(s) resumed from where the page left off.`
          : 'Connection restored.';
      } else {
        banner.hidden = true;
      }
      const who = update.frame;
      // A personal tenant (`user:<sub>`, no organization) is not worth naming beside the user.
      const personal = !who.tenant_id || who.tenant_id === `user:${who.user_id}`;
      $('who-name').textContent = personal ? who.user_id : `${who.user_id} · ${who.tenant_id}`;
      $('who').hidden = false;
      onConnected();
      break;
    }
    case 'lost': {
      pill.textContent = 'Offline';
      banner.hidden = false;
      banner.dataset.kind = 'warn';
      let remaining = Math.ceil(update.delayMs / 1000);
      const retry = h('button', { type: 'button', class: 'link' }, 'Reconnect now');
      retry.addEventListener('click', () => app.conn && app.conn.retryNow());
      const line = h('span', {});
      const render = () => {
        line.textContent = `Connection lost (${update.message}). Runs keep going on the server; reconnecting in ${remaining} s… `;
      };
      render();
      clear(banner).append(line, retry);
      countdown = setInterval(() => {
        remaining = Math.max(0, remaining - 1);
        render();
      }, 1000);
      break;
    }
    case 'refused':
      pill.textContent = 'Signed out';
      banner.hidden = true;
      signOut(`Your token was refused: ${update.message}. Sign in again with a fresh token.`);
      break;
    case 'closed':
      pill.textContent = 'Not connected';
      banner.hidden = true;
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------------------------------
// HTTP with the token.

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${app.token}` },
    cache: 'no-store',
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 401) {
    signOut(`Your sign-in is no longer valid: ${(body && body.message) || 'the token was refused'}. Sign in again.`);
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// ------------------------------------------------------------------------------------------
// The conversation: the user's questions and a view per run.

function userBubble(question) {
  const state = h('span', { class: 'bubble-state' });
  const problem = h('div', { class: 'bubble-problem', role: 'alert', hidden: true });
  const el = h('li', { class: 'msg msg-user' }, h('div', { class: 'bubble' }, h('p', {}, question)), state, problem);
  return {
    el,
    setState(text) {
      state.textContent = text;
    },
    fail(title, detail, question) {
      state.textContent = 'Not started';
      const again = h('button', { type: 'button', class: 'link' }, 'Put the question back in the box');
      again.addEventListener('click', () => {
        $('message').value = question;
        $('message').focus();
      });
      problem.hidden = false;
      clear(problem).append(h('p', {}, h('strong', {}, title), ` ${detail}`), again);
    },
  };
}

/**
 * The answer's summary (its title and the lines before the first `###` section) and the details
 * that follow; `details` is empty for an answer without sections. docs/protocol.md records the
 * convention.
 */
function splitAnswer(markdown) {
  const text = String(markdown ?? '');
  const at = text.search(/^### /m);
  if (at <= 0) return { summary: text, details: '' };
  return { summary: text.slice(0, at), details: text.slice(at) };
}

function hasResults(results) {
  return Boolean((results.days && results.days.length > 1) || (results.anomalies && results.anomalies.length) || (results.recommendations && results.recommendations.length));
}

class RunView {
  constructor(runId, question) {
    this.runId = runId;
    this.question = question;
    this.lastSeq = 0;
    this.terminal = null;
    this.resumeAskedAt = -1;
    this.deltas = '';
    this.results = { days: null, anomalies: null, recommendations: null, totalMonthlySavings: null, answered: false };

    this.badge = h('span', { class: 'badge' }, 'Running');
    this.working = h('span', { class: 'working', role: 'status', 'aria-live': 'polite' });
    this.progress = h('progress', { max: '100', value: '0', 'aria-label': 'Progress of the run' });
    this.cancelButton = h('button', { type: 'button', class: 'cancel' }, 'Cancel');
    this.cancelButton.addEventListener('click', () => this.cancel());
    this.events = h('ol', { class: 'events' });
    this.count = h('span', {}, 'Timeline');
    this.timeline = h('details', { class: 'timeline', open: true }, h('summary', {}, this.count), this.events);
    this.resultsBox = h('div', { class: 'results', hidden: true });
    this.answer = h('div', { class: 'answer markdown', hidden: true });
    this.problem = h('div', { class: 'run-problem', role: 'alert', hidden: true });
    this.article = h(
      'article',
      { class: 'run', 'data-run-id': runId, 'data-status': 'running', 'aria-label': `Agents working on: ${question}` },
      h('header', { class: 'run-head' }, this.badge, this.working, this.progress, this.cancelButton),
      this.timeline,
      this.problem,
      this.resultsBox,
      this.answer,
    );
    this.el = h('li', { class: 'msg msg-run' }, this.article);
  }

  setWorking(agent) {
    this.working.textContent = agent ? `Working now: ${agent}` : '';
  }

  apply(event) {
    if (this.terminal || !Number.isInteger(event.seq) || event.seq <= this.lastSeq) return;
    if (event.seq !== this.lastSeq + 1) {
      // Something was missed: replay from the last event drawn; repeats are skipped above.
      this.resume();
      return;
    }
    this.lastSeq = event.seq;
    this.events.append(timelineEntry(event));
    this.count.textContent = `Timeline · ${this.events.querySelectorAll('li:not([hidden])').length} steps`;
    if (app.measuring && app.measuring.runId === this.runId) {
      performance.mark('agentwire:first-entry');
      performance.measure('agentwire:ask-to-first-entry', 'agentwire:ask', 'agentwire:first-entry');
      app.measuring = null;
    }
    switch (event.type) {
      case 'agent_started':
      case 'agent_thinking':
      case 'tool_executing':
      case 'subagent_started':
        this.setWorking(event.agent);
        break;
      case 'agent_handoff':
        this.setWorking(event.to_agent);
        break;
      case 'subagent_completed':
        this.setWorking(event.parent_agent);
        break;
      case 'progress':
        if (Number.isFinite(event.percent)) this.progress.value = Math.max(0, Math.min(100, event.percent));
        break;
      case 'tool_completed':
        this.collect(event);
        break;
      case 'response_delta':
        this.deltas += String(event.delta ?? '');
        this.answer.hidden = false;
        clear(this.answer).append(h('p', { class: 'streaming' }, this.deltas));
        break;
      case 'agent_completed':
        this.complete(event);
        break;
      case 'agent_error':
        this.fail(event);
        break;
      case 'agent_cancelled':
        this.finish('cancelled', 'Cancelled');
        break;
      default:
        break;
    }
  }

  /** Keeps the structured data that the results are drawn from. */
  collect(event) {
    if (event.status !== 'ok' || !event.data) return;
    const data = event.data;
    if (Array.isArray(data.days)) this.results.days = data.days;
    if (event.tool === 'detect_anomalies') {
      this.results.anomalies = Array.isArray(data) ? data : data.anomalies || null;
    }
    if (event.tool === 'recommend_optimizations') {
      const recommendations = Array.isArray(data) ? data : data.recommendations;
      if (Array.isArray(recommendations)) this.results.recommendations = recommendations;
    }
    renderResults(this.resultsBox, this.results);
  }

  complete(event) {
    const report = event.report && typeof event.report === 'object' ? event.report : {};
    if (Array.isArray(report.daily)) this.results.days = report.daily;
    if (Array.isArray(report.anomalies)) this.results.anomalies = report.anomalies;
    if (Array.isArray(report.recommendations)) this.results.recommendations = report.recommendations;
    if (Number.isFinite(report.total_monthly_savings_usd)) this.results.totalMonthlySavings = report.total_monthly_savings_usd;
    this.results.answered = typeof event.response === 'string' && event.response.includes('### ');
    this.answer.hidden = false;
    const { summary, details } = splitAnswer(event.response);
    clear(this.answer).append(h('h3', { class: 'answer-title' }, 'Answer'), h('div', { class: 'answer-summary' }, renderMarkdown(summary)));
    if (details || !this.resultsBox.hidden || hasResults(this.results)) {
      // The summary is what a busy reader needs; the chart, tables and the analysis behind it stay
      // one click (or Enter on the focused toggle) away.
      const label = h('span', {}, 'Show the full analysis');
      const full = h('details', { class: 'full-analysis' }, h('summary', {}, label), this.resultsBox, details ? h('div', { class: 'answer-details' }, renderMarkdown(details)) : null);
      full.addEventListener('toggle', () => {
        label.textContent = full.open ? 'Hide the full analysis' : 'Show the full analysis';
      });
      this.answer.append(full);
    }
    renderResults(this.resultsBox, this.results);
    this.progress.value = 100;
    this.finish('completed', 'Completed');
    // The answer is what matters now; the steps stay one click away.
    this.timeline.open = false;
  }

  fail(event) {
    this.finish('failed', event.error_code === 'INTERRUPTED' ? 'Interrupted' : 'Failed');
    this.problem.hidden = false;
    const parts = [
      h('p', {}, h('strong', {}, `The run stopped: ${advice(event.error_code)}`)),
      h('p', { class: 'server-says' }, `The server said (${event.error_code}): ${String(event.message ?? '')}`),
    ];
    if (event.retryable) {
      const again = h('button', { type: 'button' }, 'Ask again');
      again.addEventListener('click', () => ask(this.question));
      parts.push(again);
    }
    clear(this.problem).append(...parts);
  }

  finish(status, label) {
    this.terminal = status;
    this.article.dataset.status = status;
    this.badge.textContent = label;
    this.cancelButton.remove();
    this.setWorking('');
    if (status !== 'completed') this.progress.hidden = true;
    refreshThreads();
  }

  cancel() {
    if (this.terminal) return;
    if (!app.conn || !app.conn.send({ type: 'cancel', id: randomId('cancel_'), run_id: this.runId })) {
      this.showProblem('Not connected, so the cancel was not sent.', 'Press Cancel again once the connection is back.');
      return;
    }
    this.cancelButton.disabled = true;
    this.cancelButton.textContent = 'Cancelling…';
  }

  /** Asks the server for every event after the last one drawn. */
  resume() {
    if (this.terminal || this.resumeAskedAt === this.lastSeq) return;
    if (app.conn && app.conn.send({ type: 'resume', id: randomId('resume_'), run_id: this.runId, after_seq: this.lastSeq })) {
      this.resumeAskedAt = this.lastSeq;
    }
  }

  showProblem(title, detail) {
    this.problem.hidden = false;
    clear(this.problem).append(h('p', {}, h('strong', {}, title), ` ${detail}`));
  }
}

function addRun(runId, question, afterElement) {
  const view = new RunView(runId, question);
  app.runs.set(runId, view);
  if (afterElement && afterElement.parentNode) afterElement.after(view.el);
  else $('conversation').append(view.el);
  return view;
}

function scrollToEnd() {
  const last = $('conversation').lastElementChild;
  if (last) last.scrollIntoView({ block: 'nearest' });
}

// ------------------------------------------------------------------------------------------
// Asking.

function ask(text, { example = false } = {}) {
  const question = String(text).trim();
  if (!question) {
    $('composer-hint').textContent = 'Type a question first (Enter sends, Shift+Enter adds a line).';
    return false;
  }
  if (!app.conn || !app.conn.isOpen()) {
    showAlert('Not connected.', 'The question was not sent and is still in the box; send it again once the connection is back.');
    if (!$('message').value.trim()) $('message').value = question;
    return false;
  }
  if (!app.threadId) {
    // The page names new conversations itself, so a question whose answer was lost in a
    // dropped connection can still be found in the conversation's history.
    app.threadId = randomId('thr_');
    setHash(app.threadId);
  }
  const id = randomId('req_');
  $('empty-state').hidden = true;
  const bubble = userBubble(question);
  bubble.setState('Sending…');
  $('conversation').append(bubble.el);
  app.pending.set(id, { question, bubble, threadId: app.threadId, example });
  if (example) {
    performance.clearMarks('agentwire:ask');
    performance.clearMarks('agentwire:first-entry');
    performance.mark('agentwire:ask');
  }
  app.conn.send({ type: 'start_agent', id, payload: { user_request: question, thread_id: app.threadId } });
  scrollToEnd();
  return true;
}

// ------------------------------------------------------------------------------------------
// Frames from the server.

function onFrame(frame) {
  switch (frame.type) {
    case 'run_accepted': {
      const pending = app.pending.get(frame.request_id);
      if (!pending) return;
      app.pending.delete(frame.request_id);
      if (pending.threadId !== app.threadId) return;
      pending.bubble.setState('');
      if (pending.example) app.measuring = { runId: frame.run_id };
      addRun(frame.run_id, pending.question, pending.bubble.el);
      refreshThreads();
      return;
    }
    case 'error':
      onError(frame);
      return;
    case 'connection_established':
    case 'pong':
      return;
    default:
      break;
  }
  if (frame.run_id && Number.isInteger(frame.seq)) {
    const view = app.runs.get(frame.run_id);
    if (view) {
      view.apply(frame);
      if (TERMINAL.has(frame.type)) scrollToEnd();
    }
  }
}

function onError(frame) {
  const pending = frame.request_id && app.pending.get(frame.request_id);
  const message = String(frame.message ?? '');
  const wait = Number.isFinite(frame.retry_after_ms) ? ` Try again in ${Math.ceil(frame.retry_after_ms / 1000)} s.` : '';
  if (pending) {
    app.pending.delete(frame.request_id);
    pending.bubble.fail(`Not started: ${advice(frame.error_code)}${wait}`, `(${frame.error_code}: ${message})`, pending.question);
    return;
  }
  const view = frame.run_id && app.runs.get(frame.run_id);
  if (view) {
    view.showProblem(`The server refused: ${advice(frame.error_code)}`, `(${frame.error_code}: ${message})`);
    return;
  }
  if (['AUTH_FAILED', 'AUTH_REQUIRED', 'AUTH_EXPIRED'].includes(frame.error_code)) {
    signOut(`Sign in again: ${message}`);
    return;
  }
  showAlert(`The server reported a problem: ${advice(frame.error_code)}${wait}`, `(${frame.error_code}: ${message})`);
}

/** After every (re)connection: follow the runs on screen again from their last seq. */
function onConnected() {
  for (const view of app.runs.values()) {
    view.resumeAskedAt = -1;
    view.resume();
  }
  if (app.pending.size) adoptPending();
}

/**
 * Questions sent on a connection that dropped before the server answered: find their runs in the
 * conversation's history, or say they were not sent.
 */
async function adoptPending() {
  const threadId = app.threadId;
  const waiting = [...app.pending.entries()].filter(([, p]) => p.threadId === threadId);
  if (!threadId || waiting.length === 0) return;
  let history = { runs: [] };
  try {
    history = await api(`/api/threads/${encodeURIComponent(threadId)}`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) return;
  }
  if (threadId !== app.threadId) return;
  for (const [id, pending] of waiting) {
    app.pending.delete(id);
    const run = (history.runs || []).find((r) => !app.runs.has(r.run_id) && r.user_request === pending.question);
    if (run) {
      pending.bubble.setState('');
      const view = addRun(run.run_id, run.user_request, pending.bubble.el);
      for (const event of run.events || []) view.apply(event);
      view.resume();
    } else {
      pending.bubble.fail('Not sent: the connection dropped before the server received it.', 'Send it again.', pending.question);
    }
  }
}

// ------------------------------------------------------------------------------------------
// Conversations (threads).

function setHash(threadId) {
  const hash = threadId ? `#thread=${encodeURIComponent(threadId)}` : '';
  if (location.hash !== hash) history.replaceState(null, '', hash || location.pathname);
}

function threadFromHash() {
  const match = /^#thread=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

let refreshing = false;
let refreshAgain = false;

/** Reloads the list of conversations; calls while one load is going fold into one more. */
async function refreshThreads() {
  if (!app.token) return;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      try {
        const body = await api('/api/threads?limit=50');
        if (app.token) renderThreads(body.threads || []);
      } catch {
        // The list is a convenience; the next refresh tries again.
      }
    } while (refreshAgain && app.token);
  } finally {
    refreshing = false;
  }
}

function renderThreads(threads) {
  const list = clear($('thread-list'));
  $('history-empty').hidden = threads.length > 0;
  for (const thread of threads) {
    const button = h(
      'button',
      { type: 'button', class: 'thread', 'data-thread-id': thread.thread_id, 'aria-current': thread.thread_id === app.threadId ? 'true' : null },
      h('span', { class: 'thread-title' }, thread.title || 'Untitled'),
      h('time', { datetime: thread.updated_at }, ago(thread.updated_at)),
    );
    button.addEventListener('click', () => {
      showThread(thread.thread_id);
      document.body.classList.remove('show-history');
      $('history-toggle').setAttribute('aria-expanded', 'false');
      $('message').focus();
    });
    list.append(h('li', {}, button));
  }
}

async function showThread(threadId) {
  app.view += 1;
  const view = app.view;
  app.threadId = threadId;
  app.runs.clear();
  app.pending.clear();
  clear($('conversation'));
  setHash(threadId);
  for (const button of document.querySelectorAll('#thread-list .thread')) {
    if (button.dataset.threadId === threadId) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  $('empty-state').hidden = Boolean(threadId);
  if (!threadId) return;
  let history;
  try {
    history = await api(`/api/threads/${encodeURIComponent(threadId)}`);
  } catch (err) {
    if (view !== app.view) return;
    if (err instanceof ApiError && err.status === 404) {
      // A conversation named in the address but never started (or not yours): start afresh.
      app.threadId = null;
      setHash(null);
      $('empty-state').hidden = false;
      return;
    }
    showAlert('The conversation could not be loaded.', `${err.message}. Reload the page to try again.`);
    return;
  }
  if (view !== app.view) return;
  for (const run of history.runs || []) {
    const bubble = userBubble(run.user_request);
    $('conversation').append(bubble.el);
    const runView = addRun(run.run_id, run.user_request, bubble.el);
    for (const event of run.events || []) runView.apply(event);
    if (!runView.terminal) runView.resume();
  }
  scrollToEnd();
}

// ------------------------------------------------------------------------------------------
// Signing in and out.

async function demoToken() {
  try {
    const response = await fetch('/api/demo/token', { method: 'POST', cache: 'no-store' });
    if (!response.ok) return null;
    const body = await response.json();
    return typeof body.token === 'string' ? body.token : null;
  } catch {
    return null;
  }
}

function showSignIn(message) {
  $('signin').hidden = false;
  $('chat-area').hidden = true;
  $('who').hidden = true;
  $('demo-signin').hidden = document.body.dataset.demo !== 'true';
  const error = $('signin-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('token').focus();
}

async function signIn(token) {
  let refusal;
  try {
    refusal = await checkToken(token);
  } catch (err) {
    showSignIn(`The server could not be reached (${err.message}). Check that agentwire is running, then try again.`);
    return false;
  }
  if (refusal) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(`That token was refused: ${refusal}`);
    return false;
  }
  app.token = token;
  // The tab keeps the token across reloads; closing the tab forgets it.
  sessionStorage.setItem(TOKEN_KEY, token);
  $('signin').hidden = true;
  $('chat-area').hidden = false;
  $('token').value = '';
  clearAlerts();
  app.conn = new Connection({ token, onFrame, onState: setConnectionState });
  app.conn.start();
  refreshThreads();
  await showThread(threadFromHash());
  return true;
}

function signOut(message) {
  if (app.conn) {
    const conn = app.conn;
    app.conn = null;
    conn.stop();
  }
  app.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  app.threadId = null;
  setHash(null);
  app.runs.clear();
  app.pending.clear();
  clear($('conversation'));
  clear($('thread-list'));
  $('conn-status').textContent = 'Not connected';
  $('conn-status').dataset.state = 'closed';
  $('banner').hidden = true;
  showSignIn(message);
}

// ------------------------------------------------------------------------------------------
// Wiring.

function wire() {
  $('signin').addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      showSignIn('Paste a token first.');
      return;
    }
    await signIn(token);
  });
  $('demo-signin').addEventListener('click', async () => {
    const token = await demoToken();
    if (token) await signIn(token);
    else showSignIn('This server does not hand out demo tokens; paste a token instead.');
  });
  $('composer').addEventListener('submit', (event) => {
    event.preventDefault();
    if (ask($('message').value)) {
      $('message').value = '';
      $('composer-hint').textContent = 'Enter sends · Shift+Enter adds a line';
    }
  });
  $('message').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('composer').requestSubmit();
    }
  });
  for (const button of document.querySelectorAll('.example')) {
    button.addEventListener('click', () => ask(button.dataset.question, { example: true }));
  }
  $('new-chat').addEventListener('click', () => {
    showThread(null);
    document.body.classList.remove('show-history');
    $('history-toggle').setAttribute('aria-expanded', 'false');
    $('message').focus();
  });
  $('history-toggle').addEventListener('click', () => {
    const open = document.body.classList.toggle('show-history');
    $('history-toggle').setAttribute('aria-expanded', String(open));
  });
  $('sign-out').addEventListener('click', () => signOut('Signed out. Paste a token to sign in again.'));
  // Charts are drawn at their shown width; redraw them when that changes (a phone turned round).
  let drawnWidth = window.innerWidth;
  let redraw = null;
  window.addEventListener('resize', () => {
    clearTimeout(redraw);
    redraw = setTimeout(() => {
      if (window.innerWidth === drawnWidth) return;
      drawnWidth = window.innerWidth;
      for (const view of app.runs.values()) {
        if (!view.resultsBox.hidden) renderResults(view.resultsBox, view.results);
      }
    }, 150);
  });
  window.addEventListener('hashchange', () => {
    const threadId = threadFromHash();
    if (app.token && threadId !== app.threadId) showThread(threadId);
  });
}

async function boot() {
  wire();
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token && document.body.dataset.demo === 'true') token = await demoToken();
  if (token) await signIn(token);
  else showSignIn('');
}

boot();
