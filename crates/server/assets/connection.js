// The WebSocket to /ws: authentication by subprotocol, reconnection with backoff, liveness.
//
// Browsers cannot set an Authorization header on a WebSocket, so the token travels as the
// subprotocol item `jwt.<base64url(token)>` beside `agentwire.v1`; the server selects
// `agentwire.v1` and never echoes the token. When a connection drops, this module reconnects
// with exponential backoff and jitter and tells the page, which then resumes every run it follows
// from the last `seq` it saw. When the server refuses the token (the upgrade fails before it
// opens), an HTTP call with the same token finds out why, since a browser hides the 401 body of a
// failed upgrade.

const PROTOCOL = 'agentwire.v1';
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];
/** A JSON ping this often; no pong in time means the network died without telling us. */
const HEARTBEAT_MS = 15000;
const PONG_TIMEOUT_MS = 10000;

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Why the token is refused, from an authenticated HTTP call: `null` if it is accepted. */
export async function checkToken(token) {
  const response = await fetch('/api/threads?limit=1', {
    headers: { Authorization: `Bearer ${token}` },
    cache: 'no-store',
  });
  if (response.status === 401) {
    let message = 'the token was refused';
    try {
      const body = await response.json();
      if (body && typeof body.message === 'string') message = body.message;
    } catch {
      // The status says enough.
    }
    return message;
  }
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  return null;
}

/**
 * Events (callbacks): onFrame(frame), onState({state, attempt, delayMs, message}).
 * States: connecting, open, lost (a retry is scheduled), refused (the token is not accepted),
 * closed (signed out).
 */
export class Connection {
  constructor({ token, onFrame, onState }) {
    this.token = token;
    this.onFrame = onFrame;
    this.onState = onState;
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.established = false;
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.pongTimer = null;
    /** How many times a connection was established; more than one means it reconnected. */
    this.connects = 0;
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws`;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    this.established = false;
    this.onState({ state: 'connecting', attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(this.url(), [PROTOCOL, `jwt.${base64url(this.token)}`]);
    } catch (err) {
      this.scheduleRetry(String(err));
      return;
    }
    this.socket = socket;
    socket.addEventListener('message', (message) => this.receive(socket, message));
    socket.addEventListener('close', (close) => this.closed(socket, close));
  }

  receive(socket, message) {
    if (socket !== this.socket) return;
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== 'object') return;
    if (frame.type === 'pong') {
      clearTimeout(this.pongTimer);
      return;
    }
    if (frame.type === 'connection_established' && !this.established) {
      this.established = true;
      this.attempt = 0;
      this.connects += 1;
      this.startHeartbeat();
      this.onState({ state: 'open', frame, connects: this.connects });
    }
    this.onFrame(frame);
  }

  async closed(socket, close) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.stopHeartbeat();
    if (this.stopped) {
      this.onState({ state: 'closed' });
      return;
    }
    const wasOpen = this.established;
    this.established = false;
    if (!wasOpen) {
      // The upgrade failed: ask over HTTP whether the token is the reason.
      try {
        const refusal = await checkToken(this.token);
        if (refusal) {
          this.stopped = true;
          this.onState({ state: 'refused', message: refusal });
          return;
        }
      } catch {
        // The server is unreachable; keep trying.
      }
    }
    this.scheduleRetry(close.reason || (wasOpen ? 'the connection dropped' : 'the server could not be reached'));
  }

  scheduleRetry(reason) {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    const delayMs = Math.round(base * (0.8 + Math.random() * 0.4));
    this.attempt += 1;
    this.onState({ state: 'lost', attempt: this.attempt, delayMs, message: reason });
    this.retryTimer = setTimeout(() => this.open(), delayMs);
  }

  /** Reconnects now instead of waiting for the scheduled retry. */
  retryNow() {
    if (this.stopped || this.socket) return;
    this.open();
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (!this.send({ type: 'ping' })) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => {
        // No answer: the link is dead even if the browser has not noticed.
        if (this.socket) this.socket.close(4000, 'no pong');
      }, PONG_TIMEOUT_MS);
    }, HEARTBEAT_MS);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.pongTimer);
  }

  /** Sends a message; false when there is no open, authenticated connection. */
  send(message) {
    if (!this.socket || !this.established || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  isOpen() {
    return Boolean(this.socket && this.established && this.socket.readyState === WebSocket.OPEN);
  }

  /** Closes for good (sign out). */
  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    if (this.socket) this.socket.close(1000, 'signed out');
    else this.onState({ state: 'closed' });
  }
}
