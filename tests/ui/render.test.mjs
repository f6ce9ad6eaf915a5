// Unit tests of the UI's pure helpers: `node --test tests/ui/` (scripts/test.sh
// runs them). No DOM, no IPC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { takesOver, headlineOf, formatCountdown, untilCountdownChanges, nextTickMs, remainingMs, fractionLeft, barStep, whenTime, clockTime, errorText, errorDetails, ERROR_TEXT, nextRefreshText, idleWarning, lineChart, barChart, niceMax, shortDuration, PLOT, screenFor, endedNotice, sessionErrorOf, plural, metricsSummary, sessionEndText, endingSoon, END_LEAD_MS, endTime, sessionFacts, replacedNote, notMeText, accountLine, newestViews, accountFocus, withScheme } from '../../ui/render.js';

const v = (profile, seq, extra = {}) => ({ profile, seq, ...extra });

test('a newer view of the shown profile takes over, an older one does not', () => {
  assert.equal(takesOver(v('p', 5), v('p', 6), 'p'), true);
  assert.equal(takesOver(v('p', 5), v('p', 4), 'p'), false, 'an older reply arriving after an event');
  assert.equal(takesOver(v('p', 5), v('p', 5), 'p'), true, 'the same view again is harmless');
  assert.equal(takesOver(null, v('p', 1), 'p'), true);
});

test('a late view of the profile switched away from is ignored', () => {
  assert.equal(takesOver(v('new', 1), v('old', 99), 'new'), false);
  assert.equal(takesOver(null, v('old', 3), 'new'), false);
  // Another engine numbers its own views: a lower seq of the new profile is fine.
  assert.equal(takesOver(v('old', 99), v('new', 1), 'new'), true);
});

test('the countdown follows the provider clock', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const view = { expires_at: '2026-01-01T00:10:00Z', issued_at: '2026-01-01T00:00:00Z', clock_offset_ms: 60_000 };
  assert.equal(remainingMs(view, now), 540_000);
  assert.equal(formatCountdown(remainingMs(view, now)), '9 min');
  assert.equal(formatCountdown(-5), '0 s');
  assert.ok(Math.abs(fractionLeft(view, now) - 0.9) < 1e-9);
});

test('the countdown reads in minutes until the last one, then in seconds', () => {
  assert.equal(formatCountdown(240_000), '4 min');
  assert.equal(formatCountdown(239_001), '4 min');
  assert.equal(formatCountdown(239_000), '3 min');
  assert.equal(formatCountdown(60_000), '1 min');
  assert.equal(formatCountdown(59_999), '1 min');
  assert.equal(formatCountdown(59_000), '59 s');
  assert.equal(formatCountdown(75 * 60_000), '1 h 15 min');
  assert.equal(formatCountdown(3 * 3600_000 + 5 * 60_000), '3 h 05 min');
});

test('the window wakes exactly when the countdown reads differently', () => {
  // Stepping through the next change always lands on a new text, and the
  // text never changes in between: a minute of a 10-minute token is one
  // wake-up, the last minute is sixty.
  for (const start of [600_000, 240_000, 61_500, 59_999, 30_200, 1_000]) {
    let ms = start; let wakes = 0;
    while (ms > 0 && wakes < 1000) {
      const d = untilCountdownChanges(ms);
      assert.ok(d > 0, `${ms}`);
      assert.equal(formatCountdown(ms - d + 1), formatCountdown(ms), `no change before the wake at ${ms}`);
      assert.notEqual(formatCountdown(ms - d), formatCountdown(ms), `a change at the wake from ${ms}`);
      ms -= d; wakes += 1;
    }
    assert.equal(formatCountdown(ms), '0 s');
  }
  let wakes = 0;
  for (let ms = 600_000; ms > 60_000; ms -= untilCountdownChanges(ms)) wakes += 1;
  // 10 min, 9 min, ... 1 min, then 59 s: ten texts, ten wake-ups.
  assert.equal(wakes, 10, 'once a minute until the last minute');
  assert.equal(untilCountdownChanges(0), Infinity);
});

test('the next tick is the earliest change on screen, and at most a minute away', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const at = (ms) => new Date(now + ms).toISOString();
  // 1 h 00 min 59 s left: "1 h 00 min" for one more minute.
  const base = { expires_at: at(3_659_000), issued_at: at(0), clock_offset_ms: 0 };
  assert.equal(nextTickMs(base, now), 60_000);
  assert.equal(nextTickMs({ ...base, expires_at: at(600_500) }, now), 1_500);
  // The idle warning starts 60 s before the sign-out, then counts seconds.
  assert.equal(nextTickMs({ ...base, idle_sign_out_at: at(90_000) }, now), 30_000);
  assert.equal(nextTickMs({ ...base, idle_sign_out_at: at(40_300) }, now), 300);
  // The ending-soon warning appears END_LEAD_MS before the end and goes at it.
  assert.equal(nextTickMs({ ...base, session_end: { at: at(END_LEAD_MS + 20_000), because: 'absolute' } }, now), 20_000);
  assert.equal(nextTickMs({ ...base, session_end: { at: at(45_000), because: 'absolute' } }, now), 45_000);
  assert.equal(nextTickMs({ ...base, expires_at: at(-5) }, now), 60_000);
});

test('a time on another day carries its date', () => {
  const now = Date.parse('2026-11-23T12:00:00');
  assert.equal(whenTime('2026-11-23T18:30:05', now), clockTime('2026-11-23T18:30:05'));
  assert.match(whenTime('2026-11-24T04:55:04', now), /24 Nov, 04:55$/);
  assert.equal(whenTime(null, now), '—');
});

test('errors read by code, with the detail only where it helps', () => {
  assert.match(errorText({ code: 'timeout', message: 'x' }), /did not answer in time/);
  assert.doesNotMatch(errorText({ code: 'invalid_credentials', message: 'SECRET detail' }), /SECRET/);
  // The provider's raw answer goes under Details, with the code.
  const e503 = { code: 'server_error', message: 'the server answered 503: injected failure' };
  assert.doesNotMatch(errorText(e503), /503/);
  assert.equal(errorDetails(e503), 'Error code: server_error\nthe server answered 503: injected failure');
  // The app's own explanations stay in the sentence, with no Details.
  const cfg = { code: 'config_invalid', message: 'profile p: there is no field `x`' };
  assert.match(errorText(cfg), /there is no field/);
  assert.equal(errorDetails(cfg), null);
  // While the app retries by itself it never asks the person to try again.
  for (const code of ['network_unreachable', 'timeout', 'server_error', 'tls_failure']) {
    const text = errorText({ code, message: 'x' }, { retrying: true });
    assert.doesNotMatch(text, /try again/i, code);
    assert.match(text, /keeps trying by itself/, code);
  }
});

test('no refresh token is said, never a bare dash', () => {
  assert.equal(nextRefreshText({ next_refresh_at: '2026-11-23T18:30:05' }), clockTime('2026-11-23T18:30:05'));
  assert.equal(nextRefreshText({ next_refresh_at: null, renewal_notice: 'The provider granted openid profile' }), 'none: no refresh token');
  assert.equal(nextRefreshText({ next_refresh_at: null, renewal_notice: null }), 'none planned');
});

test('the idle warning starts a minute before the sign-out', () => {
  const at = '2026-11-23T12:10:00Z';
  const t = (iso) => Date.parse(iso);
  assert.equal(idleWarning({ idle_sign_out_at: at }, t('2026-11-23T12:08:59Z')), null);
  assert.equal(idleWarning({ idle_sign_out_at: at }, t('2026-11-23T12:09:00Z')), 60);
  assert.equal(idleWarning({ idle_sign_out_at: at }, t('2026-11-23T12:09:59.500Z')), 1);
  assert.equal(idleWarning({ idle_sign_out_at: at }, t('2026-11-23T12:10:30Z')), 0);
  assert.equal(idleWarning({ idle_sign_out_at: null }, t('2026-11-23T12:09:30Z')), null);
});

test('charts: a value axis from 0 to a round top, labelled; one point or one day still reads', () => {
  assert.deepEqual([0, 1, 3, 7, 10, 11, 240, 999].map(niceMax), [1, 1, 5, 10, 10, 20, 500, 1000]);
  assert.equal(lineChart([], () => '', String), null);
  const ms = (v) => `${v} ms`;
  const line = lineChart([50, 100, 0], (i) => `t${i}`, ms);
  assert.equal(line.yMax, '100 ms');
  assert.equal(line.yZero, '0 ms');
  assert.deepEqual(line.points.map((p) => p.value), ['50 ms', '100 ms', '0 ms']);
  assert.equal(line.points[1].y, PLOT.top, 'the top value at the top');
  assert.equal(line.points[2].y, line.baseline, 'zero on the time axis');
  assert.deepEqual(line.xLabels.map((l) => l.text), ['t0', 't2']);
  const one = lineChart([42], () => '14:03', ms);
  assert.equal(one.points.length, 1);
  assert.equal(one.points[0].x, PLOT.left + (PLOT.width - PLOT.left - PLOT.right) / 2, 'one point sits in the middle');
  assert.deepEqual(one.xLabels.map((l) => l.text), ['14:03']);
  assert.deepEqual(lineChart([1, 2], () => '05:06', ms).xLabels.map((l) => l.text), ['05:06'], 'the same minute once');
  const day = barChart([3], ['6 Dec'], String);
  assert.equal(day.bars.length, 1);
  assert.ok(day.bars[0].width <= 36, 'one day is a bar, not a block');
  assert.equal(day.bars[0].value, '3');
  assert.equal(day.yMax, '5');
  const many = barChart(Array.from({ length: 20 }, (_, i) => i), Array.from({ length: 20 }, (_, i) => `d${i}`), String);
  assert.deepEqual(many.xLabels.map((l) => l.text), ['d0', 'd19'], 'many bars: the first and last label');
  assert.ok(many.bars.every((b) => !b.showValue));
  assert.ok(many.bars[0].x + many.bars[0].width <= many.bars[1].x, 'a gap between bars');
  assert.deepEqual([45, 720, 12600].map(shortDuration), ['45 s', '12 min', '3.5 h']);
});

test('one screen per view: pin over browser over session over sign-in', () => {
  const active = { state: 'active' };
  assert.equal(screenFor(active, { code: 'pin_mismatch' }), 'pin');
  assert.equal(screenFor({ state: 'signing_in', browser: { silent: false } }, null), 'browser');
  assert.equal(screenFor({ state: 'active', browser: { silent: true } }, null), 'session', 'a silent sign-in needs nobody');
  assert.equal(screenFor({ state: 'refreshing' }, null), 'session');
  for (const state of ['signed_out', 'expired', 'revoked', 'signing_in']) assert.equal(screenFor({ state }, null), 'signin');
});

test('why a session ended, and which errors the session screen shows', () => {
  assert.equal(endedNotice({ state: 'active' }), null);
  assert.deepEqual(endedNotice({ state: 'revoked' }), { code: 'session_revoked' });
  const timedOut = { code: 'session_timed_out', message: 'Signed out after 30 min without activity' };
  assert.equal(endedNotice({ state: 'expired', last_error: timedOut }), timedOut);
  assert.equal(sessionErrorOf({ state: 'active', last_error: { code: 'reauth_required' } }), null);
  assert.equal(sessionErrorOf({ state: 'expired', last_error: { code: 'server_error' } }), null);
  assert.deepEqual(sessionErrorOf({ state: 'active', last_error: { code: 'server_error' } }), { code: 'server_error' });
});

test('the lifetime bar moves in whole 1 % steps, whatever the input', () => {
  assert.equal(barStep(0.5), 0.5);
  assert.equal(barStep(0.12345), 0.12);
  assert.equal(barStep(0.996), 1);
  assert.equal(barStep(-3), 0);
  assert.equal(barStep(7), 1);
  assert.equal(barStep(NaN), 0);
  // A minute of a 30-minute token (3.3 %) changes the bar three or four
  // times, not sixty.
  const steps = new Set();
  for (let s = 0; s <= 60; s++) steps.add(barStep((1800 - s) / 1800));
  assert.ok(steps.size <= 5, `${steps.size} distinct steps in a minute`);
});

test('the badge says what the engine says, and falls back to the phase', () => {
  const retrying = { state: 'active', headline: { tone: 'attention', text: 'Offline, retrying at 14:02' } };
  assert.deepEqual(headlineOf(retrying), { tone: 'attention', text: 'Offline, retrying at 14:02' });
  assert.deepEqual(headlineOf({ state: 'active' }), { tone: 'neutral', text: 'Active' });
  assert.deepEqual(headlineOf({ state: 'expired', headline: { tone: 'bad', text: '' } }), { tone: 'neutral', text: 'Expired' });
});

test('every error code the engine sends has a sentence in the window', () => {
  // The codes as core/src/error/mod.rs spells them on the wire.
  const source = readFileSync(new URL('../../core/src/error/mod.rs', import.meta.url), 'utf8');
  const codes = [...source.matchAll(/ErrorCode::\w+ => "([a-z_]+)"/g)].map((m) => m[1]);
  assert.ok(codes.length > 20, `found only ${codes.length} codes: has the enum moved?`);
  const missing = codes.filter((c) => !(c in ERROR_TEXT));
  assert.deepEqual(missing, [], 'codes without a sentence in ui/render.js ERROR_TEXT');
});

test('counts read in the right number', () => {
  assert.equal(plural(1, 'session'), '1 session');
  assert.equal(plural(0, 'session'), '0 sessions');
  assert.equal(plural(2, 'refresh', 'refreshes'), '2 refreshes');
  const one = {
    sessions: [{}], refreshes: 1, refresh_latency_p50_ms: 12, refresh_latency_p95_ms: 12,
    api_calls: 1, failures: 1, offline_secs: 0, locations: [],
  };
  assert.equal(metricsSummary(one), '1 session, 1 refresh (median 12 ms, 95th percentile 12 ms), 1 API call, 1 failure, 0 s offline.');
  const many = { ...one, sessions: [{}, {}], refreshes: 3, api_calls: 0, failures: 2, locations: ['Berlin, DE'] };
  assert.equal(metricsSummary(many), '2 sessions, 3 refreshes (median 12 ms, 95th percentile 12 ms), 0 API calls, 2 failures, 0 s offline, from Berlin, DE.');
});

test('the session end is the engine\'s, in local time, with why', () => {
  const now = Date.parse('2026-12-05T10:00:00Z');
  const at = new Date(now + 30 * 60_000).toISOString();
  assert.deepEqual(sessionEndText({ session_end: { at, because: 'idle' } }, now),
    { text: `Session ends at ${endTime(at, now)}`, why: 'idle sign-out, unless you use the app' });
  assert.equal(sessionEndText({ session_end: null }, now).text, 'Session ends when you sign out');
  assert.equal(sessionEndText({ session_end: { at, because: 'access_ends' } }, now).why, 'it cannot be renewed');
});

test('the window says why a session ends in the words sessionctl and the tray use', () => {
  // EndCause::text in core/src/view.rs: the CLI's words for each cause.
  const source = readFileSync(new URL('../../core/src/view.rs', import.meta.url), 'utf8');
  const causes = [...source.matchAll(/EndCause::(\w+) => "([^"]+)"/g)];
  assert.equal(causes.length, 4, 'has the enum moved?');
  const snake = (name) => name.replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase());
  for (const [, name, words] of causes) {
    const at = new Date().toISOString();
    assert.equal(sessionEndText({ session_end: { at, because: snake(name) } }).why, words, name);
  }
});

test('the window warns before a limit no renewal moves, within the notification\'s lead', () => {
  const now = Date.parse('2026-12-06T10:00:00Z');
  const at = (secs) => new Date(now + secs * 1000).toISOString();
  const view = (because, secs, state = 'active') => ({ state, session_end: { at: at(secs), because } });
  const soon = endingSoon(view('absolute', 90), now);
  assert.equal(soon.seconds, 90);
  assert.match(soon.text, /^Your session ends at \d\d:\d\d: the profile's time limit\. Save your work/);
  assert.ok(endingSoon(view('provider_limit', 120), now), 'at the lead itself');
  assert.equal(endingSoon(view('provider_limit', 121), now), null, 'before the lead');
  assert.equal(endingSoon(view('absolute', -1), now), null, 'after the end');
  assert.equal(endingSoon(view('idle', 30), now), null, 'the idle sign-out has its own warning');
  assert.equal(endingSoon(view('access_ends', 30), now), null, 'a session that cannot be renewed has its banner');
  assert.equal(endingSoon(view('absolute', 30, 'signed_out'), now), null, 'no session, no warning');
  assert.equal(endingSoon({ state: 'active', session_end: null }, now), null);
});

test('the window and the notification warn with the same lead', () => {
  const rust = readFileSync(new URL('../../shell/src/backend/notice.rs', import.meta.url), 'utf8');
  const secs = Number(/pub const END_LEAD_SECS: i64 = (\d+);/.exec(rust)[1]);
  assert.equal(END_LEAD_MS, secs * 1000);
});

test('a session end is written to the minute, as core/src/view.rs local_clock_time writes it', () => {
  const now = new Date(2026, 10, 23, 12, 0, 0).getTime();
  assert.equal(endTime(new Date(2026, 10, 23, 18, 30, 59).toISOString(), now), '18:30');
  assert.equal(endTime(new Date(2026, 10, 24, 4, 5, 4).toISOString(), now), 'Tue 24 Nov 04:05');
});

test('a provider session in plain words: local times, the place, no id', () => {
  const now = Date.parse('2026-11-23T18:40:00');
  const s = { id: 'e3b0c442-98fc', device_name: 'phone', created: '2026-11-23T18:30:05', last_seen: '2026-11-23T18:35:00', ip: '198.51.100.4', city: 'Lisbon', country: 'PT' };
  assert.equal(sessionFacts(s, now), 'Signed in 18:30:05 · last seen 18:35:00 · Lisbon, PT (198.51.100.4)');
  assert.equal(sessionFacts({ ...s, last_seen: null, city: null, country: null, ip: null }, now), 'Signed in 18:30:05 · unknown place');
  assert.equal(sessionFacts({ ...s, city: null, country: null }, now).endsWith(' · 198.51.100.4'), true);
  assert.doesNotMatch(sessionFacts(s, now) + replacedNote(s, now), /e3b0c442/);
  assert.equal(replacedNote(s, now), 'To sign in here, Session Manager ended your session on phone (signed in 18:30:05).');
});

test('"This wasn\'t me" says what it ended, in the right number', () => {
  assert.match(notMeText(1), /^Ended 1 other session and this one\. Change your password/);
  assert.match(notMeText(0), /^Ended 0 other sessions and this one\./);
  assert.match(notMeText(null), /^Signed out here\. .*account page/);
});

test('a session ended from another device says so, with the provider\'s code under Details', () => {
  const err = { code: 'session_revoked', message: 'the session was revoked: ended from another device' };
  const ended = endedNotice({ state: 'revoked', last_error: err, ended_because: 'ended_on_another_device' });
  assert.equal(errorText(ended), 'Your session was ended from another of your devices. Sign in again.');
  assert.equal(errorDetails(ended), `Error code: session_revoked\n${err.message}`);
  const plain = endedNotice({ state: 'revoked', last_error: err, ended_because: 'revoked' });
  assert.equal(errorText(plain), ERROR_TEXT.session_revoked);
});

test('the home list keeps each profile\'s newest view, whichever arrives last', () => {
  let known = {};
  known = newestViews(known, v('work', 4, { state: 'active' }));
  known = newestViews(known, v('home', 1, { state: 'signed_out' }));
  known = newestViews(known, v('work', 3, { state: 'revoked' }));
  assert.equal(known.work.state, 'active', 'an older view of work does not undo a newer one');
  assert.equal(known.home.state, 'signed_out', 'another engine\'s numbers are its own');
  known = newestViews(known, v('work', 5, { state: 'expired' }));
  assert.equal(known.work.state, 'expired');
});

test('a home-list row says the headline and when the session ends, or nothing to end', () => {
  const now = Date.parse('2026-12-06T10:00:00');
  const end = new Date('2026-12-06T11:30:00').toISOString();
  const live = accountLine({ state: 'active', headline: { tone: 'good', text: 'Active' }, session_end: { at: end, because: 'idle' } }, now);
  assert.deepEqual(live, { state: 'Active', tone: 'good', ends: 'ends 11:30' });
  const forever = accountLine({ state: 'refreshing', headline: { tone: 'attention', text: 'Offline, retrying' }, session_end: null }, now);
  assert.equal(forever.ends, 'ends when you sign out');
  assert.equal(forever.tone, 'attention');
  const out = accountLine({ state: 'signed_out', headline: { tone: 'neutral', text: 'Signed out' }, session_end: null }, now);
  assert.deepEqual(out, { state: 'Signed out', tone: 'neutral', ends: '' });
  assert.equal(accountLine(undefined, now).state, 'Not opened yet');
});

test('the arrow keys, Home and End move along the home list and wrap', () => {
  assert.equal(accountFocus('ArrowDown', 0, 3), 1);
  assert.equal(accountFocus('ArrowDown', 2, 3), 0);
  assert.equal(accountFocus('ArrowUp', 0, 3), 2);
  assert.equal(accountFocus('ArrowDown', -1, 3), 0, 'from outside the list, down is the first row');
  assert.equal(accountFocus('ArrowUp', -1, 3), 2, 'and up the last');
  assert.equal(accountFocus('Home', 2, 3), 0);
  assert.equal(accountFocus('End', 0, 3), 2);
  assert.equal(accountFocus('Enter', 0, 3), null);
  assert.equal(accountFocus('ArrowDown', 0, 0), null);
});

test('a provider address typed without a scheme is https; one with a scheme stays as typed', () => {
  assert.equal(withScheme(' sso.example.com/realms/staff '), 'https://sso.example.com/realms/staff');
  assert.equal(withScheme('https://idp.example'), 'https://idp.example');
  assert.equal(withScheme('http://idp.example'), 'http://idp.example', 'refused by the backend, by name');
  assert.equal(withScheme('  '), '', 'empty stays empty: the form names it');
});
