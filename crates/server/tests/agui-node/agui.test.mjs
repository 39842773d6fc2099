// The real AG-UI client against a real agentwire server.
//
// Run by crates/server/tests/agui.rs, which starts the server and passes AGENTWIRE_URL,
// AGENTWIRE_TOKEN (alice) and AGENTWIRE_FORGED_TOKEN. Every event goes through the client's own
// pipeline: its SSE parser, its schema enforcement (which strips and warns about anything the
// AG-UI 1.0 schema does not describe) and its event verifier (the ordering rules). Any warning
// from the client fails the test. Prints one JSON line of figures; exits non-zero on failure.

import { HttpAgent, runHttpRequest, transformHttpEventStream, verifyEvents } from "@ag-ui/client";
import { EventType } from "@ag-ui/core";
import assert from "node:assert/strict";

const url = process.env.AGENTWIRE_URL;
const token = process.env.AGENTWIRE_TOKEN;
const forged = process.env.AGENTWIRE_FORGED_TOKEN;
assert.ok(url && token && forged, "AGENTWIRE_URL, AGENTWIRE_TOKEN and AGENTWIRE_FORGED_TOKEN are required");
const auth = { Authorization: `Bearer ${token}` };

const QUESTION = "Where can we cut our AI spend without hurting quality?";

// The client reports what it strips or cannot place through console.warn; none is allowed.
const warnings = [];
const warn = console.warn;
console.warn = (...args) => {
  warnings.push(args.map(String).join(" "));
  warn(...args);
};

/** Runs one question through HttpAgent; returns the verified events and the run's result. */
async function ask(agent, question, subscriber = {}) {
  agent.addMessage({ id: `u${agent.messages.length + 1}`, role: "user", content: question });
  const events = [];
  const outcome = await agent.runAgent(
    {},
    {
      ...subscriber,
      onEvent: ({ event }) => {
        events.push(event);
      },
    },
  );
  return { events, outcome };
}

/** Collects an observable of events (no rxjs import needed). */
function collect(observable) {
  return new Promise((resolve, reject) => {
    const out = [];
    observable.subscribe({ next: (e) => out.push(e), error: reject, complete: () => resolve(out) });
  });
}

/** Reads a resume stream through the client's HTTP runner and SSE parser, optionally verified. */
async function readStream(path, headers, verify) {
  const http$ = runHttpRequest(() => fetch(`${url}${path}`, { headers: { ...auth, ...headers } }));
  const events$ = transformHttpEventStream(http$);
  return collect(verify ? verifyEvents()(events$) : events$);
}

const ofType = (events, type) => events.filter((e) => e.type === type);

// 1. A supervisor run, as a front end would make it.
const agent = new HttpAgent({ url: `${url}/api/agui`, headers: auth, threadId: "node-thread" });
const first = await ask(agent, QUESTION);
const events = first.events;
const types = events.map((e) => e.type);
assert.equal(types[0], EventType.RUN_STARTED);
assert.equal(types.at(-1), EventType.RUN_FINISHED);
assert.equal(events[0].threadId, "node-thread");
const runId = events[0].runId;
assert.match(runId, /^run_/);

// Tool calls: each started, given JSON arguments, ended, and answered.
const starts = ofType(events, EventType.TOOL_CALL_START);
assert.ok(starts.length >= 3, `expected several tool calls, got ${starts.length}`);
for (const start of starts) {
  const args = ofType(events, EventType.TOOL_CALL_ARGS).filter((e) => e.toolCallId === start.toolCallId);
  assert.equal(args.length, 1, `one ARGS for ${start.toolCallId}`);
  JSON.parse(args[0].delta);
  assert.equal(ofType(events, EventType.TOOL_CALL_END).filter((e) => e.toolCallId === start.toolCallId).length, 1);
  const results = ofType(events, EventType.TOOL_CALL_RESULT).filter((e) => e.toolCallId === start.toolCallId);
  assert.equal(results.length, 1, `one RESULT for ${start.toolCallId}`);
  assert.ok(results[0].content.length > 0);
}
const toolNames = [...new Set(starts.map((s) => s.toolCallName))];

// The answer text and the report.
const answer = ofType(events, EventType.TEXT_MESSAGE_CONTENT).map((e) => e.delta).join("");
assert.ok(answer.includes("$"), `the answer names dollars: ${answer.slice(0, 200)}`);
const finished = events.at(-1);
assert.equal(finished.outcome.type, "success");
assert.ok(Array.isArray(finished.result.recommendations) && finished.result.recommendations.length > 0);
assert.deepEqual(first.outcome.result, finished.result);

// What the client built from the stream: the answer, the tool calls and results, the reasoning.
const assistant = agent.messages.filter((m) => m.role === "assistant");
assert.ok(assistant.some((m) => m.content === answer), "the answer is an assistant message");
const calls = assistant.flatMap((m) => m.toolCalls ?? []);
assert.equal(calls.length, starts.length);
assert.equal(agent.messages.filter((m) => m.role === "tool").length, starts.length);
assert.equal(
  agent.messages.filter((m) => m.role === "reasoning").length,
  ofType(events, EventType.REASONING_MESSAGE_START).length,
);
assert.ok(ofType(events, EventType.STEP_STARTED).some((e) => e.stepName === "data"));

// 2. A second question on the same thread: ids never collide with the first run's.
const second = await ask(agent, "And which model should we route to instead?");
assert.equal(second.events.at(-1).type, EventType.RUN_FINISHED);
assert.notEqual(second.events[0].runId, runId);
assert.equal(agent.messages.filter((m) => m.role === "user").length, 2);
assert.equal(
  agent.messages.filter((m) => m.role === "tool").length,
  starts.length + ofType(second.events, EventType.TOOL_CALL_START).length,
);

// 3. Resume, through the client's own parser: from the start (verified) it is the same run; from
// the middle it is the rest of it.
const replay = await readStream(`/api/agui/runs/${runId}/events`, {}, true);
assert.deepEqual(replay, events);
const middle = Math.floor(events.length / 2);
const raw = await (await fetch(`${url}/api/agui/runs/${runId}/events`, { headers: auth })).text();
const ids = [...raw.matchAll(/^id: (.+)$/gm)].map((m) => m[1]);
assert.equal(ids.length, events.length);
const rest = await readStream(`/api/agui/runs/${runId}/events`, { "Last-Event-ID": ids[middle] }, false);
assert.deepEqual(rest, events.slice(middle + 1));

// 4. Cancelled while a tool call is under way: the client's verifier accepts how it ends.
const cancelAgent = new HttpAgent({ url: `${url}/api/agui`, headers: auth, threadId: "node-cancel" });
let cancelAnswer;
const cancelled = await ask(cancelAgent, QUESTION, {
  onToolCallStartEvent: ({ event }) => {
    if (!cancelAnswer) {
      const id = event.toolCallId.split(":")[0];
      cancelAnswer = fetch(`${url}/api/agui/runs/${id}/cancel`, { method: "POST", headers: auth });
    }
  },
});
assert.equal((await cancelAnswer).status, 202);
const cancelledEnd = cancelled.events.at(-1);
assert.equal(cancelledEnd.type, EventType.RUN_FINISHED);
assert.equal(cancelledEnd.outcome.type, "cancelled");

// 5. A refused token is an HTTP error the client reports with the server's JSON.
const refusedAgent = new HttpAgent({
  url: `${url}/api/agui`,
  headers: { Authorization: `Bearer ${forged}` },
  threadId: "node-refused",
});
const errorLog = console.error;
console.error = () => {};
try {
  await assert.rejects(ask(refusedAgent, QUESTION), (err) => {
    assert.equal(err.status, 401);
    assert.equal(err.payload.error_code, "AUTH_FAILED");
    return true;
  });
} finally {
  console.error = errorLog;
}

assert.deepEqual(warnings, [], "the AG-UI client warned about the stream");
console.log(
  JSON.stringify({
    ok: true,
    events_first_run: events.length,
    tool_calls: starts.length,
    tools: toolNames,
    answer_chars: answer.length,
    events_cancelled_run: cancelled.events.length,
  }),
);
