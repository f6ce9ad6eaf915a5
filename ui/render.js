// Pure helpers: text for codes and states, countdown arithmetic. No IPC here.

/** What to tell people for each error code (the UI never reads messages to decide). */
export const ERROR_TEXT = {
  invalid_credentials: 'The username or password is not right. Check them and try again.',
  network_unreachable: 'The identity provider cannot be reached. Check your network connection, then try again.',
  timeout: 'The identity provider took the connection but did not answer in time. Try again in a moment; if it keeps happening, the provider (or something in between) is overloaded.',
  tls_failure: 'A secure connection to the identity provider could not be set up. Check the profile\'s certificate settings or ask your administrator.',
  server_error: 'The identity provider reported a problem. Try again in a moment.',
  protocol_error: 'The identity provider answered in an unexpected way. Ask your administrator to check the profile.',
  token_invalid: 'The identity provider sent a token that failed validation, so it was not used. Ask your administrator.',
  session_expired: 'Your session has expired. Sign in again.',
  session_revoked: 'Your session was ended by the identity provider. Sign in again.',
  session_timed_out: 'You were signed out by the profile\'s session timeout:',
  not_signed_in: 'You are not signed in.',
  session_limit: 'You already have the most sessions allowed. End one of them to sign in here, or sign out on another device and try again.',
  keychain_unavailable: 'The system keychain is not available: this session will not survive a restart.',
  config_invalid: 'The configuration file has a problem:',
  invalid_state: 'That cannot be done right now:',
  internal: 'Something went wrong inside the app:',
  pin_mismatch: 'The server\'s certificate does not match the pinned keys.',
  authorization_failed: 'The identity provider did not complete the sign-in.',
  sign_in_cancelled: 'The sign-in was cancelled.',
  sign_in_timeout: 'The sign-in in the browser took too long. Start it again.',
  reauth_required: 'Your session cannot be extended without you. Sign in again before it expires.',
  not_configured: 'No identity provider is set up yet:',
  not_installed: 'Something this needs is not installed:',
  field_missing: 'Nothing was sent.',
};

/** How a session is kept alive, for people. */
export const POLICY_TEXT = {
  refresh: 'Refresh token',
  reauthenticate: 'Signing in again (re-authentication)',
};

/**
 * Codes whose message is the app's own explanation (which file, which
 * field, what is missing): it follows the sentence. Any other message is
 * the provider's or the network's raw answer: it goes under "Details".
 */
const MESSAGE_INLINE = new Set(['field_missing', 'not_configured', 'not_installed', 'session_timed_out', 'config_invalid', 'invalid_state', 'internal']);

/** While renewal is retried by itself, no "try again": say it keeps trying. */
const RETRYING_TEXT = {
  network_unreachable: 'The identity provider cannot be reached right now. Session Manager keeps trying by itself.',
  timeout: 'The identity provider is not answering in time. Session Manager keeps trying by itself.',
  server_error: 'The identity provider reported a problem. Session Manager keeps trying by itself.',
  tls_failure: 'A secure connection to the identity provider could not be set up (a network login page can cause this). Session Manager keeps trying by itself.',
  protocol_error: 'The identity provider answered in an unexpected way. Session Manager keeps trying by itself.',
};

/**
 * One plain sentence for an error: what happened and what to do. With
 * `{ retrying: true }` (the app is retrying by itself) it says so instead
 * of asking the person to try again.
 */
export function errorText(err, { retrying = false } = {}) {
  if (!err || typeof err !== 'object') return ERROR_TEXT.internal + ' ' + String(err);
  if (err.text) return err.text;
  if (retrying && RETRYING_TEXT[err.code]) return RETRYING_TEXT[err.code];
  const base = ERROR_TEXT[err.code] || ERROR_TEXT.internal;
  return MESSAGE_INLINE.has(err.code) && err.message ? `${base} ${err.message}` : base;
}

/** What goes under "Details": the error code and the raw answer, or null. */
export function errorDetails(err) {
  if (!err || typeof err !== 'object' || !err.code || MESSAGE_INLINE.has(err.code)) return null;
  return err.message ? `Error code: ${err.code}\n${err.message}` : `Error code: ${err.code}`;
}

export const STATE_TEXT = {
  signed_out: 'Signed out', signing_in: 'Signing in…', active: 'Active',
  refreshing: 'Refreshing…', expired: 'Expired', revoked: 'Revoked',
};

/** The engine's headline ({tone, text}), or the phase's name from a view without one. */
export function headlineOf(view) {
  if (view && view.headline && view.headline.text) return view.headline;
  return { tone: 'neutral', text: (view && (STATE_TEXT[view.state] || view.state)) || '' };
}

/** Milliseconds left, with "now" corrected to the provider's clock. */
export function remainingMs(view, nowMs) {
  if (!view || !view.expires_at) return 0;
  return Date.parse(view.expires_at) - (nowMs + (view.clock_offset_ms || 0));
}

/** Fraction of the token's lifetime left, 0..1. */
export function fractionLeft(view, nowMs) {
  if (!view || !view.expires_at || !view.issued_at) return 0;
  const life = Date.parse(view.expires_at) - Date.parse(view.issued_at);
  return life > 0 ? Math.min(1, Math.max(0, remainingMs(view, nowMs) / life)) : 0;
}

/** How many steps the lifetime bar moves in: it repaints at most 100 times a lifetime. */
export const BAR_STEPS = 100;

/** The bar's scale for a fraction left, in whole steps of 1/BAR_STEPS. */
export function barStep(fraction) {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  return Math.round(f * BAR_STEPS) / BAR_STEPS;
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * The access token's time left as the window shows it: whole minutes while a
 * minute or more is left ("4 min", "1 h 05 min"), seconds in the last minute
 * ("45 s"). Until the last minute it changes once a minute, so the window
 * repaints once a minute: a repaint is what an idle window costs in
 * WebKitGTK (1 % of a core at one a second, 0.1 % at one a minute; see
 * docs/benchmarks.md).
 */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
}

/** Milliseconds until formatCountdown(ms) reads differently (Infinity at 0). */
export function untilCountdownChanges(ms) {
  if (!(ms > 0)) return Infinity;
  const s = Math.ceil(ms / 1000);
  // The text changes when ceil(ms / 1000) drops to `next`.
  const next = s < 60 ? s - 1 : Math.floor(s / 60) * 60 - 1;
  return ms - next * 1000;
}

/**
 * Milliseconds until anything the session screen shows by the clock changes:
 * the countdown, the idle warning (seconds in its last minute), the
 * ending-soon warning (shown from END_LEAD_MS before the end, gone at it).
 * At most a minute, at least 1 ms.
 */
export function nextTickMs(view, nowMs) {
  const delays = [untilCountdownChanges(remainingMs(view, nowMs)), 60_000];
  if (view && view.idle_sign_out_at) {
    const left = Date.parse(view.idle_sign_out_at) - nowMs;
    if (left > 60_000) delays.push(left - 60_000);
    else if (left > 0) delays.push(left - (Math.ceil(left / 1000) - 1) * 1000);
  }
  const end = view && view.session_end;
  if (end && end.at) {
    const left = Date.parse(end.at) - nowMs;
    if (left > END_LEAD_MS) delays.push(left - END_LEAD_MS);
    else if (left > 0) delays.push(left);
  }
  return Math.max(1, Math.min(...delays));
}

/** Local wall-clock time of an RFC 3339 instant, e.g. 14:03:07. */
export function clockTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Like clockTime, with the date when it is not today: "Tue 24 Nov, 04:55". */
export function whenTime(iso, nowMs = Date.now()) {
  if (!iso) return '—';
  const d = new Date(iso);
  const today = new Date(nowMs);
  if (d.toDateString() === today.toDateString()) return clockTime(iso);
  const day = d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' });
  return `${day}, ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * One of the provider's sessions in plain words, no id: "Signed in 14:03:07
 * · last seen 14:20:11 · Lisbon, PT (198.51.100.4)" (local times; the date
 * when not today).
 */
export function sessionFacts(s, nowMs = Date.now()) {
  const place = [s.city, s.country].filter(Boolean).join(', ');
  const where = place && s.ip ? `${place} (${s.ip})` : (place || s.ip || 'unknown place');
  const parts = [`Signed in ${whenTime(s.created, nowMs)}`];
  if (s.last_seen) parts.push(`last seen ${whenTime(s.last_seen, nowMs)}`);
  parts.push(where);
  return parts.join(' · ');
}

/**
 * What "This wasn't me" did: `others` sessions ended elsewhere and this one
 * (`null`: the provider has no way to end them from here).
 */
export function notMeText(others) {
  if (others === null || others === undefined) {
    return 'Signed out here. This identity provider offers no way to end your sessions on other devices from this app: end them on its account page, and change your password.';
  }
  return `Ended ${plural(others, 'other session')} and this one. Change your password with your identity provider before you sign in again.`;
}

/** What the window says after a sign-in that ended `s` to make room. */
export function replacedNote(s, nowMs = Date.now()) {
  return `To sign in here, Session Manager ended your session on ${s.device_name} (signed in ${whenTime(s.created, nowMs)}).`;
}

/**
 * When a session ends, to the minute, as the tray, the notifications and
 * `sessionctl status` write it (`local_clock_time` in core/src/view.rs):
 * "14:03" today, else "Tue 24 Nov 04:55".
 */
export function endTime(iso, nowMs = Date.now()) {
  const d = new Date(iso);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (d.toDateString() === new Date(nowMs).toDateString()) return hm;
  const weekday = d.toLocaleDateString('en-GB', { weekday: 'short' });
  const month = d.toLocaleDateString('en-GB', { month: 'short' });
  return `${weekday} ${d.getDate()} ${month} ${hm}`;
}

/**
 * Whether `next` should replace `shown`: views arrive by two paths (a
 * command's answer, an event) in any order; each profile's engine numbers
 * them (`seq`), and views of a profile other than `profile` (the one the
 * person switched to) are late arrivals.
 */
export function takesOver(shown, next, profile) {
  if (!next) return false;
  if (profile && next.profile !== profile) return false;
  return !(shown && next.profile === shown.profile && next.seq < shown.seq);
}

// The "Next refresh" line: the planned time, or why there is none. A
// session the provider gave no refresh token says so rather than a dash.
export function nextRefreshText(view) {
  if (view.next_refresh_at) return clockTime(view.next_refresh_at);
  return view.renewal_notice ? 'none: no refresh token' : 'none planned';
}

// The idle timeout's warning: the seconds left when the sign-out is a
// minute away or less (local time, as the engine keeps it), else null.
export function idleWarning(view, nowMs) {
  if (!view || !view.idle_sign_out_at) return null;
  const left = Date.parse(view.idle_sign_out_at) - nowMs;
  return left <= 60_000 ? Math.max(0, Math.ceil(left / 1000)) : null;
}

// Chart geometry for the Metrics panel (plain SVG, drawn by app.js): a
// plot area inside a 300x120 box, with room for the value axis on the left
// and the labels under the time axis.
export const PLOT = { width: 300, height: 120, left: 46, right: 8, top: 12, bottom: 22 };

/** The value axis's top: the smallest 1, 2 or 5 x 10^n at or above `v`. */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

const round1 = (n) => +n.toFixed(1);

function frame(values) {
  const max = niceMax(Math.max(...values, 0));
  const w = PLOT.width - PLOT.left - PLOT.right;
  const h = PLOT.height - PLOT.top - PLOT.bottom;
  const y = (v) => round1(PLOT.top + h - (v / max) * h);
  return { max, w, h, y, bottom: PLOT.top + h };
}

/**
 * A line chart of `values` (oldest first), one labelled point each; one
 * value is a point in the middle. `label(i)` names the i-th point on the
 * time axis (the first and last are shown), `format(v)` writes a value.
 */
export function lineChart(values, label, format) {
  if (!values.length) return null;
  const f = frame(values);
  const x = (i) => round1(PLOT.left + (values.length === 1 ? f.w / 2 : (i / (values.length - 1)) * f.w));
  return {
    yMax: format(f.max),
    yZero: format(0),
    yMaxAt: PLOT.top,
    baseline: f.bottom,
    points: values.map((v, i) => ({ x: x(i), y: f.y(v), value: format(v) })),
    // The first and last time; once when both read the same.
    xLabels: [...new Set([0, values.length - 1])]
      .map((i) => ({ x: x(i), text: label(i) }))
      .filter((l, i, all) => i === 0 || l.text !== all[0].text),
  };
}

/**
 * A bar chart of `values` with `labels` under the bars (all of them when
 * there are few, else the first and last) and each value over its bar when
 * there are few; a bar is at most 36 wide, so one day is one bar, not a
 * block.
 */
export function barChart(values, labels, format) {
  if (!values.length) return null;
  const f = frame(values);
  const slot = f.w / values.length;
  const width = round1(Math.min(36, slot * 0.8));
  const few = values.length <= 8;
  const bars = values.map((v, i) => {
    const cx = PLOT.left + slot * (i + 0.5);
    const top = f.y(v);
    return { x: round1(cx - width / 2), y: top, width, height: round1(f.bottom - top), cx: round1(cx), value: format(v), showValue: few };
  });
  const shown = few ? bars.map((_, i) => i) : [...new Set([0, values.length - 1])];
  return {
    yMax: format(f.max),
    yZero: format(0),
    yMaxAt: PLOT.top,
    baseline: f.bottom,
    bars,
    xLabels: shown.map((i) => ({ x: bars[i].cx, text: labels[i] })),
  };
}

/** A duration in seconds for a chart: "45 s", "12 min", "3.5 h". */
export function shortDuration(secs) {
  if (secs < 60) return `${Math.round(secs)} s`;
  if (secs < 3600) return `${Math.round(secs / 60)} min`;
  return `${round1(secs / 3600)} h`;
}

// Which screen a view shows: the pin-mismatch screen over everything, then
// a browser sign-in someone must finish (a silent one needs nobody), then
// the session while there is one, else the sign-in screen.
export function screenFor(view, pinError) {
  if (pinError) return 'pin';
  if (view.browser && !view.browser.silent) return 'browser';
  if (view.state === 'active' || view.state === 'refreshing') return 'session';
  return 'signin';
}

// Why the last session ended, for the sign-in screen (an error to word), or
// null when it did not end that way.
export function endedNotice(view) {
  if (view.state !== 'expired' && view.state !== 'revoked') return null;
  const err = view.last_error || { code: view.state === 'expired' ? 'session_expired' : 'session_revoked' };
  const text = ENDED_TEXT[view.ended_because];
  return text ? { ...err, text } : err;
}

/** The sign-in notice's sentence where why the session ended says more than the error's code. */
export const ENDED_TEXT = {
  ended_on_another_device: 'Your session was ended from another of your devices. Sign in again.',
};

// The error the session screen shows: the last one while signed in, except
// those a banner says already.
export function sessionErrorOf(view) {
  const inSession = view.state === 'active' || view.state === 'refreshing';
  const bannered = ['keychain_unavailable', 'reauth_required'];
  return inSession && view.last_error && !bannered.includes(view.last_error.code) ? view.last_error : null;
}

/** "1 session", "2 sessions": a count with its noun in the right number. */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** The Metrics panel's summary in words. */
export function metricsSummary(m) {
  const ms = (v) => (v == null ? '–' : `${v} ms`);
  const from = m.locations.length ? `, from ${m.locations.join('; ')}` : '';
  return `${plural(m.sessions.length, 'session')}, ${plural(m.refreshes, 'refresh', 'refreshes')} `
    + `(median ${ms(m.refresh_latency_p50_ms)}, 95th percentile ${ms(m.refresh_latency_p95_ms)}), `
    + `${plural(m.api_calls, 'API call')}, ${plural(m.failures, 'failure')}, ${m.offline_secs} s offline${from}.`;
}

const END_CAUSE_TEXT = {
  provider_limit: "the provider's limit",
  idle: 'idle sign-out, unless you use the app',
  absolute: "the profile's time limit",
  access_ends: 'it cannot be renewed',
};

/**
 * "Session ends at …": when the session really ends, as the engine
 * computed it (the same time the tray and `sessionctl status` show), and
 * why, as `{ text, why }`.
 */
export function sessionEndText(view, nowMs = Date.now()) {
  const end = view && view.session_end;
  if (!end) return { text: 'Session ends when you sign out', why: 'renewed for as long as the provider allows' };
  return { text: `Session ends at ${endTime(end.at, nowMs)}`, why: END_CAUSE_TEXT[end.because] || end.because };
}

/**
 * How long before the session's real end the window warns: the lead of the
 * "Session ending soon" notification too (END_LEAD_SECS in
 * shell/src/backend/notice.rs; a UI test keeps the two equal).
 */
export const END_LEAD_MS = 120_000;

/**
 * The warning before the session really ends at a limit no renewal moves
 * (the provider's limit, the profile's absolute limit), within END_LEAD_MS:
 * `{ text, seconds }`, or null. The idle sign-out has its own warning, and a
 * session that cannot be renewed its own banner.
 */
export function endingSoon(view, nowMs) {
  const end = view && view.session_end;
  if (!end || !(end.because === 'provider_limit' || end.because === 'absolute')) return null;
  if (!(view.state === 'active' || view.state === 'refreshing')) return null;
  const left = Date.parse(end.at) - nowMs;
  if (!(left >= 0 && left <= END_LEAD_MS)) return null;
  return {
    text: `Your session ends at ${endTime(end.at, nowMs)}: ${END_CAUSE_TEXT[end.because]}. Save your work; you will have to sign in again.`,
    seconds: Math.ceil(left / 1000),
  };
}

/** The provider kinds as the home list names them. */
export const PROVIDER_TEXT = { finhub: 'FinHub', oidc: 'OpenID Connect' };

/**
 * One profile in the home list: `{ state, tone, ends }` from its latest
 * view (the headline the window and the tray show, and when the session
 * really ends), or "Not opened" before its engine has opened.
 */
export function accountLine(view, nowMs = Date.now()) {
  if (!view) return { state: 'Not opened yet', tone: 'neutral', ends: '' };
  const h = headlineOf(view);
  const live = view.state === 'active' || view.state === 'refreshing';
  const end = view.session_end;
  const ends = !live ? '' : end ? `ends ${endTime(end.at, nowMs)}` : 'ends when you sign out';
  return { state: h.text, tone: h.tone || 'neutral', ends };
}

/**
 * The newest view of each profile, by profile name: every engine's views
 * arrive on one stream, each numbered by its engine (`seq`).
 */
export function newestViews(known, next) {
  const shown = known[next.profile];
  if (shown && next.seq < shown.seq) return known;
  return { ...known, [next.profile]: next };
}

/**
 * The next account to focus from `index` of `count` for a key (the list's
 * arrow keys, Home and End), or null for any other key.
 */
export function accountFocus(key, index, count) {
  if (count === 0) return null;
  if (index < 0) index = key === 'ArrowUp' ? 0 : -1;
  switch (key) {
    case 'ArrowDown': return (index + 1) % count;
    case 'ArrowUp': return (index - 1 + count) % count;
    case 'Home': return 0;
    case 'End': return count - 1;
    default: return null;
  }
}

/**
 * A provider's address as typed: `https://` added when no scheme is given
 * (a person types the host); one given, `http://` too, stays, so that the
 * backend names it.
 */
export function withScheme(typed) {
  const t = typed.trim();
  return t === '' || t.includes('://') ? t : `https://${t}`;
}
