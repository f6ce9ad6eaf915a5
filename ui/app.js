// The UI: renders SessionViews it is given, forwards clicks to commands.
// It holds no token and no session logic beyond the countdown.
import { withScheme, errorText, errorDetails, STATE_TEXT, headlineOf, POLICY_TEXT, remainingMs, fractionLeft, barStep, formatCountdown, nextTickMs, clockTime, takesOver, nextRefreshText, idleWarning, endingSoon, lineChart, barChart, shortDuration, endTime, PLOT, screenFor, endedNotice, sessionErrorOf, plural, metricsSummary, sessionEndText, sessionFacts, replacedNote, notMeText, accountLine, newestViews, accountFocus, PROVIDER_TEXT } from './render.js';

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;
const $ = (id) => document.getElementById(id);

let view = null;
/** The profile whose views are shown (views of others are late arrivals). */
let currentProfile = null;
let profiles = [];
let pinError = null;
let lastAnnounced = '';
/** The screen shown last: focus moves into a blocking alert when it first shows. */
let shownScreen = null;
/** At the session limit: the live sessions listed and the one being confirmed. */
let limit = null;
/** After a sign-in that ended another session to make room: what it ended. */
let replaced = null;
/** After "This wasn't me": what it ended (until the next session). */
let notMeDone = null;
/** The newest view of every profile, for the home list. */
let views = {};
/** "Add a provider" while it is open: `{ found, firstRun }`. */
let adding = null;
/** The home list's rows as last drawn (their markup): the same rows are not drawn again. */
let accountsDrawn = '';
/** What removing a profile did, said until the next switch. */
let removedNote = null;

function show(el, on) { if (el.hidden === on) el.hidden = !on; }

/** Write a text only when it changes: an unchanged node is not repainted. */
function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

/**
 * Show `err` in `el`: one plain sentence, and the code and the provider's
 * raw answer under a "Details" disclosure (`opts.retrying`: the app is
 * retrying by itself, so no "try again").
 */
function setError(el, err, opts = {}) {
  const sentenceText = err ? errorText(err, opts) : '';
  const raw = err ? errorDetails(err) : '';
  // Every render calls this: the same error again leaves the element as it
  // is, so an opened "Details" stays open (and is not replaced under a click).
  const shown = `${sentenceText}\u0000${raw || ''}`;
  if (el.dataset.shown === shown && !el.hidden === !!err) return;
  el.dataset.shown = shown;
  el.replaceChildren();
  show(el, !!err);
  // The person's own Cancel is news, not a failure: not in red.
  el.classList.toggle('note', !!err && err.code === 'sign_in_cancelled');
  if (!err) return;
  const sentence = document.createElement('span');
  sentence.textContent = sentenceText;
  el.append(sentence);
  if (!raw) return;
  const details = document.createElement('details');
  details.className = 'error-details';
  details.dataset.testid = `${el.id}-details`;
  const summary = document.createElement('summary');
  summary.textContent = 'Details';
  const text = document.createElement('code');
  text.textContent = raw;
  details.append(summary, text);
  el.append(details);
}

function announce(text) {
  if (text !== lastAnnounced) { lastAnnounced = text; $('live-region').textContent = text; }
}

/**
 * Take `next` as the view to show unless it is older than the one shown: views
 * arrive by two paths (a command's answer, an event) in any order, and each
 * profile's engine numbers them (`seq`).
 */
function accept(next) {
  if (takesOver(view, next, currentProfile)) view = next;
}

function selectedProfile() { return profiles.find((p) => p.selected) || profiles[0]; }

function renderProfiles() {
  for (const select of [$('profile-select')]) {
    select.replaceChildren(...profiles.map((p) => {
      const o = document.createElement('option');
      o.value = p.name;
      o.textContent = `${p.name} (${p.environment})`;
      o.selected = p.selected;
      return o;
    }));
  }
  const users = (selectedProfile() || {}).demo_users || [];
  const list = $('demo-list');
  list.replaceChildren(...users.map((u) => {
    const li = document.createElement('li');
    const a = document.createElement('code'); a.textContent = u.username;
    const b = document.createElement('code'); b.textContent = u.password;
    li.append(a, ' / ', b);
    return li;
  }));
  show($('demo-credentials'), users.length > 0);
}

/** The profile, state and session the panels were last read for. */
let panelsShown = null;

function render() {
  if (!view) return;
  // Whichever path the view came by (a command's answer, an event), a new
  // profile, state or session reads the panels again.
  const panelsKey = `${currentProfile}/${view.state}/${view.session_id || ''}`;
  if (panelsKey !== panelsShown) { panelsShown = panelsKey; refreshPanels(); }
  document.getElementById('app').setAttribute('aria-busy', 'false');
  renderHeader();
  const screen = adding ? 'add' : screenFor(view, pinError);
  show($('screen-add'), screen === 'add');
  show($('screen-pin'), screen === 'pin');
  show($('screen-browser'), screen === 'browser');
  show($('screen-signin'), screen === 'signin');
  show($('screen-session'), screen === 'session');
  show($('sessions-panel'), screen === 'session');
  if (adding) show($('accounts'), false);
  else renderAccounts();
  renderRemove();
  if (screen === 'pin') renderPin();
  // A blocking alert takes the focus (WCAG 2.4.3): its one way on, the
  // button back to sign-in, with the alert's text as its description.
  if (screen === 'pin' && shownScreen !== 'pin') $('pin-back').focus();
  shownScreen = screen;
  if (screen === 'browser') renderBrowserWait();
  renderSignIn();
  renderSession(screen === 'session');
  // What a replacing sign-in ended, said on this session until it ends;
  // what "This wasn't me" ended, on the sign-in screen until the next one.
  if (screen !== 'session') replaced = null;
  else notMeDone = null;
  if (notMeDone !== null) setText($('not-me-done'), notMeDone);
  show($('not-me-done'), notMeDone !== null);
  if (replaced !== null) setText($('replaced-note'), replaced);
  show($('replaced-note'), replaced !== null);
  tick();
  const inSession = screen === 'session';
  announce(`${headlineOf(view).text}${inSession ? `, ${plural(Math.ceil(remainingMs(view, Date.now()) / 60000), 'minute')} left` : ''}`);
}

function renderHeader() {
  const env = $('env-badge');
  env.textContent = view.environment;
  env.className = `env ${view.environment}`;
  show($('keychain-banner'), view.persistence === 'memory_only');
}

function renderPin() {
  $('pin-presented').textContent = pinError.detail || '(not reported)';
}

function renderBrowserWait() {
  if ($('browser-url').textContent !== view.browser.url) $('browser-copy-status').textContent = '';
  $('browser-url').textContent = view.browser.url;
  $('browser-deadline').textContent = clockTime(view.browser.deadline);
  const openError = view.browser.open_error;
  $('browser-open-error').textContent = openError ? `No browser could be started: ${openError}` : '';
  show($('browser-open-error'), !!openError);
}

function renderSignIn() {
  const browser = view.sign_in_method === 'browser';
  show($('password-fields'), !browser);
  show($('browser-hint'), browser);
  $('signin-button').disabled = view.state === 'signing_in';
  $('signin-button').textContent = view.state === 'signing_in' ? 'Signing in…' : (browser ? 'Continue in your browser' : 'Sign in');
  const notice = $('session-notice');
  const ended = endedNotice(view);
  setError(notice, ended);
}

/** The session screen: its facts, then its banners. */
function renderSession(inSession) {
  const browser = view.sign_in_method === 'browser';
  // The engine's headline: the same words as the tray and `sessionctl status`.
  const headline = headlineOf(view);
  const badge = $('state-badge');
  badge.textContent = headline.text;
  badge.className = `state ${view.state} tone-${headline.tone}`;
  $('user-value').textContent = view.user || '—';
  $('name-value').textContent = [view.name, view.email && `<${view.email}>`].filter(Boolean).join(' ') || '—';
  // FinHub has customers and tenants; OpenID Connect has names and emails.
  for (const el of document.querySelectorAll('.finhub-only')) el.hidden = browser;
  for (const el of document.querySelectorAll('.oidc-only')) el.hidden = !browser;
  const reauthenticate = view.extend_access === 'reauthenticate';
  $('policy-value').textContent = POLICY_TEXT[view.extend_access] || view.extend_access;
  $('next-refresh-label').textContent = reauthenticate ? 'Next silent sign-in' : 'Next refresh';
  // Re-authenticate mode: when the person will have to sign in, unless a
  // silent sign-in extends the session first.
  for (const el of document.querySelectorAll('.reauth-only')) el.hidden = !reauthenticate;
  $('signin-needed-value').textContent = clockTime(view.expires_at) + (view.reauth_needed || !view.next_refresh_at ? '' : ' (a silent sign-in will try first)');
  $('customer-value').textContent = view.customer || '—';
  $('tenant-value').textContent = view.tenant || '—';
  $('scope-value').textContent = view.scope || '—';
  $('next-refresh').textContent = nextRefreshText(view);
  $('refresh-count').textContent = String(view.refresh_count);
  const last = view.last_refresh;
  $('last-refresh').textContent = last ? `${last.ok ? 'Succeeded' : 'Failed'} at ${clockTime(last.at)}` : 'Not yet';
  setError($('session-error'), sessionErrorOf(view), { retrying: !!view.renewal && view.renewal.kind === 'retrying' });
  $('refresh-button').disabled = view.state !== 'active';
  renderSessionBanners(inSession);
}

function renderSessionBanners(inSession) {
  // When the session really ends (the engine's one answer); the countdown
  // below is only its access token's.
  const ends = $('session-ends');
  const end = sessionEndText(view);
  $('session-ends-text').textContent = end.text;
  $('session-ends-why').textContent = end.why;
  ends.dataset.at = (view.session_end && view.session_end.at) || '';
  show(ends, inSession);
  $('countdown-label').textContent = view.session_end && view.session_end.because === 'access_ends'
    ? 'Ends in' : 'Access token valid for';
  show($('offline-notice'), inSession && view.offline);
  $('backup-endpoint').textContent = view.backup_endpoint || '';
  show($('backup-notice'), inSession && !!view.backup_endpoint);
  const anomalies = view.anomalies || [];
  $('anomaly-list').replaceChildren(...anomalies.map((a) => {
    const li = document.createElement('li'); li.dataset.testid = 'anomaly-item'; li.dataset.kind = a.kind;
    li.textContent = a.reason; return li;
  }));
  show($('anomaly-banner'), inSession && anomalies.length > 0);
  $('pin-report-text').textContent = view.pin_report || '';
  show($('pin-report-notice'), inSession && !!view.pin_report);
  // The provider granted no refresh token: the engine's explanation.
  $('renewal-notice').textContent = view.renewal_notice || '';
  show($('renewal-notice'), inSession && !!view.renewal_notice);
  show($('reauth-banner'), inSession && view.reauth_needed);
  if (view.reauth_needed) $('reauth-deadline').textContent = clockTime(view.expires_at);
}

// The countdown: computed here from expires_at, no IPC, and woken only when
// something it shows changes (nextTickMs): once a minute while minutes are
// left, once a second in the last minute and during the idle warning. Only
// what changed is written: the text, the bar in steps of 1 % through
// `transform` (the compositor moves it; no layout, no repaint of its
// neighbours). While the window is hidden or minimized nothing ticks (the
// tray and the notification keep the state); it resumes on showing.
let timer = null;
let barShown = null;
function tick() {
  clearTimeout(timer);
  if (!view || !(view.state === 'active' || view.state === 'refreshing')) return;
  if (document.hidden) return;
  const now = Date.now();
  const left = remainingMs(view, now);
  const shown = formatCountdown(left);
  const minuteChanged = shown !== $('countdown').textContent;
  setText($('countdown'), shown);
  const idle = idleWarning(view, now);
  if (idle !== null) setText($('idle-seconds'), String(idle));
  show($('idle-warning'), idle !== null);
  const soon = endingSoon(view, now);
  if (soon) {
    setText($('ending-soon-text'), soon.text);
    // The headline says it too (amber), until the session ends.
    setText($('state-badge'), 'Ending soon');
    const tone = `state ${view.state} tone-attention`;
    if ($('state-badge').className !== tone) $('state-badge').className = tone;
  }
  show($('ending-soon'), soon !== null);
  const step = barStep(fractionLeft(view, now));
  if (step !== barShown) {
    barShown = step;
    $('progress-fill').style.transform = `scaleX(${step})`;
    $('progress-bar').setAttribute('aria-valuenow', String(Math.round(step * 100)));
    $('progress-bar').classList.toggle('low', step < 0.2);
  }
  // Announce whole minutes only.
  if (minuteChanged && left >= 60_000) announce(`${headlineOf(view).text}, ${plural(Math.floor(left / 60_000), 'minute')} left`);
  timer = setTimeout(tick, nextTickMs(view, now) + 5);
}
document.addEventListener('visibilitychange', () => { if (document.hidden) clearTimeout(timer); else tick(); });

/** The "Your sessions" panel: loaded when opened, and after each change. */
async function loadSessions() {
  const unsupported = view && !view.sessions_api;
  show($('sessions-unsupported'), unsupported);
  show($('end-others-button'), !unsupported);
  show($('sessions-reload'), !unsupported);
  const list = $('sessions-list');
  const error = $('sessions-error');
  show(error, false);
  // No session shown (signed out, another profile's sign-in): no list.
  const inSession = view && screenFor(view, pinError) === 'session';
  if (unsupported || !inSession || !$('sessions-details').open) { list.replaceChildren(); return; }
  let sessions;
  const asked = currentProfile;
  try { sessions = await invoke('list_sessions'); } catch (e) {
    if (asked === currentProfile) setError(error, e);
    return;
  }
  // An answer about a profile no longer shown is dropped.
  if (asked !== currentProfile) return;
  list.replaceChildren(...sessions.map((s) => {
    const li = document.createElement('li');
    li.dataset.testid = 'session-row';
    li.dataset.current = String(s.current);
    const name = document.createElement('strong'); name.textContent = s.device_name;
    li.append(name);
    if (s.current) {
      const badge = document.createElement('span'); badge.className = 'badge'; badge.dataset.testid = 'this-device';
      badge.textContent = 'This device'; li.append(' ', badge);
    }
    const facts = document.createElement('div'); facts.className = 'muted';
    facts.textContent = sessionFacts(s);
    li.append(facts);
    if (!s.current) {
      const end = document.createElement('button'); end.type = 'button'; end.className = 'danger';
      end.dataset.testid = 'end-session-button'; end.textContent = 'End';
      end.setAttribute('aria-label', `End the session on ${s.device_name}`);
      end.addEventListener('click', () => run(end, async () => { await invoke('end_session', { id: s.id }); await loadSessions(); loadActivity(); }, error));
      li.append(end);
    }
    return li;
  }));
}

const SVG = 'http://www.w3.org/2000/svg';
function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}
function svgText(x, y, text, anchor, testid) {
  const el = svgEl('text', { x, y, 'text-anchor': anchor, ...(testid ? { 'data-testid': testid } : {}) });
  el.textContent = text;
  return el;
}

/**
 * Draw a chart model (render.js's lineChart or barChart): both axes with
 * the value axis's 0 and top, the time axis's labels, and the values (on
 * each point and bar as a tooltip, and written over the bars when there
 * are few). `testid` marks the line or each bar.
 */
function drawChart(svg, chart, testid) {
  if (!chart) { svg.replaceChildren(); return; }
  const right = PLOT.width - PLOT.right;
  const anchor = (x) => (x - PLOT.left < 24 ? 'start' : right - x < 24 ? 'end' : 'middle');
  const titled = (el, value) => { const t = svgEl('title', {}); t.textContent = value; el.append(t); return el; };
  const parts = [
    svgEl('line', { x1: PLOT.left, y1: PLOT.top, x2: PLOT.left, y2: chart.baseline, class: 'axis', 'data-testid': 'chart-axis' }),
    svgEl('line', { x1: PLOT.left, y1: chart.baseline, x2: right, y2: chart.baseline, class: 'axis' }),
    svgText(PLOT.left - 4, chart.yMaxAt + 4, chart.yMax, 'end', 'chart-y-max'),
    svgText(PLOT.left - 4, chart.baseline, chart.yZero, 'end'),
    ...chart.xLabels.map((l) => svgText(l.x, PLOT.height - 5, l.text, anchor(l.x), 'chart-x-label')),
  ];
  if (chart.points) {
    if (chart.points.length > 1) {
      parts.push(svgEl('polyline', { points: chart.points.map((p) => `${p.x},${p.y}`).join(' '), 'data-testid': testid }));
    }
    parts.push(...chart.points.map((p, i) => titled(svgEl('circle', { cx: p.x, cy: p.y, r: 2.5, ...(chart.points.length === 1 && i === 0 ? { 'data-testid': testid } : {}) }), p.value)));
    const last = chart.points[chart.points.length - 1];
    parts.push(svgText(last.x, Math.max(PLOT.top - 2, last.y - 5), last.value, anchor(last.x), 'chart-value'));
  }
  if (chart.bars) {
    for (const b of chart.bars) {
      parts.push(titled(svgEl('rect', { x: b.x, y: b.y, width: b.width, height: b.height, 'data-testid': testid }), b.value));
      if (b.showValue) parts.push(svgText(b.cx, Math.max(PLOT.top - 2, b.y - 3), b.value, 'middle', 'chart-value'));
    }
  }
  svg.replaceChildren(...parts);
}

/** "2026-12-06" as "6 Dec". */
function dayLabel(day) {
  return new Date(`${day}T12:00:00`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
}

/**
 * "Your sessions", Metrics and Activity belong to the profile shown: all
 * three are read again after a profile switch and every change of the
 * session (the closed ones are emptied, and read when opened).
 */
function refreshPanels() {
  loadActivity();
  loadMetrics();
  loadSessions();
}

/** The Metrics panel: numbers from the audit log, drawn as plain SVG. */
async function loadMetrics() {
  if (!$('metrics-details').open) {
    // Closed: nothing of an earlier profile waits in it; read when opened.
    $('metrics-summary').textContent = '';
    for (const id of ['metrics-latency', 'metrics-per-day', 'metrics-lifetimes']) $(id).replaceChildren();
    return;
  }
  let m;
  const asked = currentProfile;
  try { m = await invoke('metrics'); } catch (e) { if (asked === currentProfile) $('metrics-summary').textContent = errorText(e); return; }
  if (asked !== currentProfile) return;
  $('metrics-summary').textContent = metricsSummary(m);
  const latency = m.refresh_latency;
  drawChart($('metrics-latency'), lineChart(latency.map(([, ms]) => ms), (i) => endTime(latency[i][0]), (v) => `${v} ms`), 'metrics-latency-line');
  const days = Object.entries(m.sessions_per_day);
  drawChart($('metrics-per-day'), barChart(days.map(([, n]) => n), days.map(([d]) => dayLabel(d)), String), 'metrics-day-bar');
  drawChart($('metrics-lifetimes'), barChart(m.sessions.map((s) => s.duration_secs), m.sessions.map((_, i) => `#${i + 1}`), shortDuration), 'metrics-lifetime-bar');
}

async function loadActivity() {
  let items = [];
  const asked = currentProfile;
  try { items = await invoke('recent_activity', { limit: 20 }); } catch (e) { items = []; }
  if (asked !== currentProfile) return;
  const list = $('activity-list');
  if (items.length === 0) {
    const li = document.createElement('li'); li.className = 'empty'; li.textContent = 'Nothing yet.';
    list.replaceChildren(li);
    return;
  }
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement('li');
    li.dataset.testid = 'activity-item';
    li.dataset.kind = item.kind;
    const t = document.createElement('time'); t.dateTime = item.time; t.textContent = clockTime(item.time);
    const s = document.createElement('span'); s.textContent = item.text;
    // The provider's own words and the code, behind a disclosure.
    if (item.detail) {
      const details = document.createElement('details');
      details.className = 'error-details';
      const summary = document.createElement('summary'); summary.textContent = 'Details';
      const code = document.createElement('code'); code.textContent = item.detail;
      details.append(summary, code);
      s.append(details);
    }
    li.append(t, s);
    return li;
  }));
}

/** The About panel; QA gets the built-in Playground's admin API. */
async function loadAbout() {
  try { $('autostart-toggle').checked = await invoke('autostart'); } catch (e) { /* shown as off */ }
  let about;
  try { about = await invoke('about'); } catch (e) { return; }
  $('about-version').textContent = about.version;
  $('about-data-dir').textContent = about.data_dir;
  $('about-keychain').textContent = `service "${about.keychain_service}"`;
  const qa = about.playground;
  show($('qa-panel'), !!qa);
  if (qa) {
    $('qa-admin-url').textContent = qa.admin_url;
    $('qa-admin-token').textContent = qa.admin_token;
    $('qa-ca-cert').textContent = qa.ca_cert;
    $('qa-example').textContent = `curl --cacert '${qa.ca_cert}' -H 'Authorization: Bearer ${qa.admin_token}' ${qa.admin_url}/sessions`;
  }
  setError($('qa-error'), about.playground_error);
}

/**
 * "Copy diagnostics": the text is shown (and selected) in any case, and
 * put on the clipboard where the webview allows it.
 */
async function copyDiagnostics() {
  // The shell puts it on the clipboard (WebKitGTK's web clipboard refuses);
  // the text is shown and selected too, for copying by hand.
  const { text, copied } = await invoke('copy_diagnostics');
  const box = $('diagnostics-text');
  box.value = text;
  show(box, true);
  box.scrollIntoView({ block: 'nearest' });
  box.focus();
  box.select();
  $('diagnostics-status').textContent = copied
    ? 'Copied to the clipboard. It holds no token or password.'
    : 'Select the text below and copy it. It holds no token or password.';
}

async function run(button, action, errorEl) {
  if (button) button.disabled = true;
  setError(errorEl, null);
  try { return await action(); }
  catch (err) {
    if (err && err.code === 'pin_mismatch') { pinError = err; render(); }
    else setError(errorEl, err);
  } finally { if (button) button.disabled = false; render(); }
}

function wire() {
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (view && view.sign_in_method === 'browser') {
      run($('signin-button'), async () => { accept(await invoke('sign_in_browser')); }, $('signin-error'));
      return;
    }
    const username = $('username').value;
    const password = $('password');
    // An empty field is caught here: nothing is sent for it.
    const missing = !username.trim() ? $('username') : (!password.value ? password : null);
    if (missing) {
      setError($('signin-error'), { code: 'field_missing', message: missing === password ? 'Enter your password.' : 'Enter your username.' });
      missing.focus();
      return;
    }
    run($('signin-button'), () => signInReplacing(null), $('signin-error'));
  });
  const switchProfile = (ev) => run(ev.target, () => showProfile(ev.target.value), $('signin-error'));
  $('profile-select').addEventListener('change', switchProfile);
  wireAdd();
  wireRemove();
  $('account-list').addEventListener('keydown', (ev) => {
    const rows = [...$('account-list').querySelectorAll('button.account')];
    const next = accountFocus(ev.key, rows.indexOf(document.activeElement), rows.length);
    if (next === null) return;
    ev.preventDefault();
    rows[next].focus();
  });
  $('refresh-button').addEventListener('click', () => run($('refresh-button'), async () => { accept(await invoke('refresh_now')); }, $('session-error')));
  $('signout-button').addEventListener('click', () => run($('signout-button'), async () => {
    const report = await invoke('sign_out');
    accept(report.view);
    loadActivity();
  }, $('session-error')));
  // Before a limit no renewal moves: a new sign-in now. Through the browser
  // that is a new session replacing this one; with a password, this one
  // ends here and the sign-in form takes the password.
  $('ending-soon-signin').addEventListener('click', () => run($('ending-soon-signin'), signInAgain, $('session-error')));
  // Start at login: what the shell answers is what the box shows.
  $('autostart-toggle').addEventListener('change', async () => {
    const box = $('autostart-toggle');
    box.disabled = true;
    setError($('autostart-error'), null);
    try { box.checked = await invoke('set_autostart', { enabled: box.checked }); }
    catch (e) { box.checked = !box.checked; setError($('autostart-error'), e); }
    finally { box.disabled = false; }
  });
  // The browser-wait screen: the engine's own address, opened again or copied.
  $('browser-open-again').addEventListener('click', () => run($('browser-open-again'), async () => {
    await invoke('open_sign_in_page');
    $('browser-copy-status').textContent = 'Opened the sign-in page again.';
  }, $('browser-action-error')));
  $('browser-copy').addEventListener('click', () => run($('browser-copy'), async () => {
    const { copied } = await invoke('copy_sign_in_address');
    $('browser-copy-status').textContent = copied
      ? 'Address copied. Paste it into your browser.'
      : 'Select the address above and copy it.';
    if (!copied) window.getSelection().selectAllChildren($('browser-url'));
  }, $('browser-action-error')));
  // The outcome comes with the sign-in's own answer and the next event;
  // cancel_sign_in answers nothing, so no stale view can come back here.
  $('cancel-signin').addEventListener('click', () => run($('cancel-signin'), () => invoke('cancel_sign_in'), $('signin-error')));
  // "This wasn't me": asks first, then ends every session, this one last.
  const askNotMe = (on) => { show($('not-me-confirm'), on); show($('not-me-actions'), !on); $(on ? 'not-me-yes' : 'not-me').focus(); };
  $('not-me').addEventListener('click', () => askNotMe(true));
  $('not-me-no').addEventListener('click', () => askNotMe(false));
  $('not-me-yes').addEventListener('click', () => run($('not-me-yes'), async () => {
    const done = await invoke('end_everywhere');
    notMeDone = notMeText(done.others);
    show($('not-me-confirm'), false); show($('not-me-actions'), true);
    accept(done.view);
  }, $('session-error')));
  $('anomaly-dismiss').addEventListener('click', () => run($('anomaly-dismiss'), () => invoke('dismiss_anomalies'), $('session-error')));
  $('metrics-details').addEventListener('toggle', () => loadMetrics());
  $('sessions-details').addEventListener('toggle', () => loadSessions());
  $('sessions-reload').addEventListener('click', () => loadSessions());
  $('end-others-button').addEventListener('click', () => run($('end-others-button'), async () => {
    await invoke('end_other_sessions'); await loadSessions(); loadActivity();
  }, $('sessions-error')));
  $('end-oldest-button').addEventListener('click', () => run($('end-oldest-button'), () => signInReplacing('oldest'), $('signin-error')));
  $('stay-button').addEventListener('click', () => run($('stay-button'), () => invoke('touch'), $('session-error')));
  // Any input is activity for the idle timeout; told at most every 15 s.
  let lastTouch = 0;
  const activity = () => {
    if (!view || view.state !== 'active' || !view.idle_sign_out_at) return;
    const now = Date.now();
    if (now - lastTouch < 15_000) return;
    lastTouch = now;
    invoke('touch').catch(() => {});
  };
  for (const kind of ['pointerdown', 'keydown', 'wheel']) window.addEventListener(kind, activity, { passive: true });
  $('reauth-button').addEventListener('click', () => run($('reauth-button'), async () => { accept(await invoke('sign_in_browser')); }, $('session-error')));
  $('copy-diagnostics').addEventListener('click', () => run($('copy-diagnostics'), copyDiagnostics, $('qa-error')));
  $('pin-back').addEventListener('click', () => { pinError = null; render(); $('username').focus(); });
  // Ctrl+W closes the window (the app goes on in the tray), Ctrl+Q quits.
  window.addEventListener('keydown', (ev) => {
    if (!ev.ctrlKey || ev.altKey || ev.metaKey || ev.shiftKey) return;
    const command = { w: 'close_window', q: 'quit' }[ev.key.toLowerCase()];
    if (!command) return;
    ev.preventDefault();
    invoke(command).catch(() => {});
  });
}

/** Show profile `name`'s session (its engine runs either way). */
async function showProfile(name) {
  const previous = { profile: currentProfile, view };
  limit = null; renderLimit(); // another profile's sessions
  removedNote = null;
  currentProfile = name;
  view = null;
  try { accept(await invoke('switch_profile', { name })); }
  catch (e) { currentProfile = previous.profile; view = previous.view; throw e; }
  await loadProfiles();
  render();
}

/** The profile list again (after a switch, an add, a removal). */
async function loadProfiles() {
  profiles = (await invoke('list_profiles')).profiles;
  for (const p of profiles) if (p.view) views = newestViews(views, p.view);
  renderProfiles();
}

/**
 * The home list: every profile with its environment, provider, state and
 * when its session ends, live. A row opens that profile's session; the
 * arrow keys, Home and End move between rows.
 */
function renderAccounts() {
  const list = $('account-list');
  const rows = profiles.map((p) => {
    const line = accountLine(views[p.name]);
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button'; b.className = 'account'; b.dataset.testid = 'account-row'; b.dataset.profile = p.name;
    if (p.name === currentProfile) b.setAttribute('aria-current', 'true');
    const name = document.createElement('span'); name.className = 'name'; name.textContent = p.name;
    const env = document.createElement('span'); env.className = `env ${p.environment}`; env.textContent = p.environment;
    name.append(env);
    const where = document.createElement('span'); where.className = 'where';
    where.textContent = `${PROVIDER_TEXT[p.provider] || p.provider} · ${p.address}`;
    const status = document.createElement('span'); status.className = 'status'; status.dataset.testid = 'account-status';
    const state = document.createElement('span'); state.className = `tone-${line.tone}`; state.textContent = line.state;
    status.append(state);
    if (line.ends) { const ends = document.createElement('span'); ends.className = 'muted'; ends.textContent = ` · ${line.ends}`; status.append(ends); }
    b.append(name, status, where);
    b.addEventListener('click', () => {
      adding = null;
      if (p.name === currentProfile) { render(); return; }
      run(b, () => showProfile(p.name), $(view && (view.state === 'active' || view.state === 'refreshing') ? 'session-error' : 'signin-error'));
    });
    li.append(b);
    return li;
  });
  // The same rows again are not redrawn (focus and hover stay).
  const key = rows.map((li) => li.firstChild.outerHTML).join('');
  if (accountsDrawn !== key) {
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.profile : null;
    accountsDrawn = key;
    list.replaceChildren(...rows);
    if (focused) { const again = list.querySelector(`[data-profile="${CSS.escape(focused)}"]`); if (again) again.focus(); }
  }
  show($('accounts'), true);
}

/** "Add a provider": its form, what was found, and the confirmation. */
function renderAdd() {
  const finhub = $('add-kind-finhub').checked;
  show($('add-finhub-fields'), finhub);
  show($('add-oidc-fields'), !finhub);
  setText($('add-url-label'), finhub ? 'FinHub API address' : 'Issuer address');
  const found = adding && adding.found;
  show($('add-found'), !!found);
  show($('add-confirm'), !!found);
  setText($('add-look-up'), found ? 'Look up again' : 'Look up');
  $('add-look-up').classList.toggle('primary', !found);
  if (!found) return;
  const n = found.presented.length;
  setText($('add-chain-intro'), `The host presented ${plural(n, 'certificate')}, leaf first; ${plural(found.verified_path.length, 'key')} on the path your system trusts:`);
  $('add-chain').replaceChildren(...found.presented.map((c) => {
    const li = document.createElement('li');
    const code = document.createElement('code'); code.textContent = c.pin;
    li.append(code, c.on_verified_path ? ' (trusted path)' : ' (not on the trusted path)');
    return li;
  }));
  $('add-pins').replaceChildren(...found.pins.map((pin, i) => {
    const li = document.createElement('li'); li.dataset.testid = 'add-pin';
    const code = document.createElement('code'); code.textContent = pin;
    li.append(code, i === 0 ? ' (the provider\'s own key)' : ' (backup: the key that vouches for it)');
    return li;
  }));
  const summary = found.kind === 'finhub'
    ? `Its key set holds ${plural(found.keys || 0, 'signing key')}.`
    : `${found.registers ? 'Session Manager will register itself with the provider (a public app, no secret). ' : ''}Scopes: ${found.scopes.join(' ')}.`;
  setText($('add-summary'), `${summary} The profile is written to ${found.config_file}.`);
}

/** What the add form says, as the backend takes it. */
function newProvider(withPins) {
  return {
    kind: $('add-kind-finhub').checked ? 'finhub' : 'oidc',
    name: $('add-name').value,
    url: withScheme($('add-url').value),
    tenant_id: $('add-tenant').value,
    audience: $('add-audience').value,
    client_id: $('add-client').value,
    ca_file: $('add-ca').value,
    environment: $('add-environment').value,
    pins: withPins && adding && adding.found ? adding.found.pins : [],
  };
}

/** The first empty field the kind needs, or null. */
function missingAddField() {
  const finhub = $('add-kind-finhub').checked;
  const need = [['add-url', 'Give the provider\'s https address.'], ['add-name', 'Give the profile a name (for example: work).']];
  if (finhub) need.push(['add-tenant', 'Give the FinHub tenant id.'], ['add-audience', 'Give the audience FinHub\'s tokens carry.']);
  const empty = need.find(([id]) => !$(id).value.trim());
  return empty ? { el: $(empty[0]), message: empty[1] } : null;
}

function openAdd(firstRun) {
  adding = { found: null, firstRun };
  setError($('add-error'), null);
  for (const s of document.querySelectorAll('main > section')) if (s.id !== 'screen-add') s.hidden = true;
  show($('screen-add'), true);
  show($('accounts'), false);
  renderAdd();
  $('add-url').focus();
}

function closeAdd() {
  const firstRun = adding && adding.firstRun;
  adding = null;
  show($('screen-add'), false);
  if (firstRun) { show($('screen-first-run'), true); $('first-run-add').focus(); return; }
  render();
  $('add-provider').focus();
}

function wireAdd() {
  const changed = () => { if (adding) { adding.found = null; renderAdd(); } };
  for (const id of ['add-kind-oidc', 'add-kind-finhub']) $(id).addEventListener('change', changed);
  for (const id of ['add-url', 'add-name', 'add-tenant', 'add-audience', 'add-client', 'add-ca', 'add-environment']) $(id).addEventListener('input', changed);
  $('add-provider').addEventListener('click', () => openAdd(false));
  $('first-run-add').addEventListener('click', () => openAdd(true));
  $('add-cancel').addEventListener('click', closeAdd);
  $('add-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const missing = missingAddField();
    if (missing) { setError($('add-error'), { code: 'field_missing', message: missing.message }); missing.el.focus(); return; }
    run($('add-look-up'), async () => {
      adding.found = null; renderAdd();
      adding.found = await invoke('examine_provider', { provider: newProvider(false) });
      renderAdd();
      $('add-confirm').focus();
    }, $('add-error'));
  });
  $('add-confirm').addEventListener('click', () => run($('add-confirm'), async () => {
    const provider = newProvider(true);
    const added = await invoke('add_provider', { provider });
    if (adding.firstRun) {
      // The app has started on the new profile: the page starts again.
      sessionStorage.setItem('sign-in-after-add', provider.name.trim());
      location.reload();
      return;
    }
    adding = null;
    show($('screen-add'), false);
    currentProfile = added.profile;
    view = null;
    accept(added);
    await loadProfiles();
    render();
    await signInNew();
  }, $('add-error')));
}

/** Right after a provider is added: its sign-in, in the browser where it signs in there. */
async function signInNew() {
  if (view.sign_in_method === 'browser') { await run($('signin-button'), async () => { accept(await invoke('sign_in_browser')); }, $('signin-error')); return; }
  $('username').focus();
}

/** "Remove this profile": in the profile's detail, behind its own confirmation. */
function renderRemove() {
  const p = profiles.find((x) => x.name === currentProfile);
  show($('remove-panel'), !!p && p.removable && profiles.length > 1 && !adding);
  if (p) setText($('remove-ask'), `Sign out of ${p.name} and remove it from your config file? Its session on this computer ends, and Session Manager forgets the provider. You can add it again later.`);
  if (removedNote !== null) setText($('remove-done'), removedNote);
  show($('remove-done'), removedNote !== null);
}

function wireRemove() {
  $('remove-confirm').addEventListener('click', () => run($('remove-confirm'), async () => {
    const name = currentProfile;
    const removed = await invoke('remove_profile', { name });
    $('remove-details').open = false;
    const shown = await invoke('session_view');
    currentProfile = shown.profile;
    view = null;
    accept(shown);
    views = Object.fromEntries(Object.entries(views).filter(([k]) => k !== name));
    await loadProfiles();
    removedNote = removed.message;
    render();
    $('remove-done').focus();
  }, $('remove-error')));
}

// The first-run screen: nothing is configured and the app has no built-in
// Playground (the packaged app). "Try the demo" starts the Playground
// package; the page then starts again on its profiles.
function showFirstRun(err) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== 'screen-first-run';
  const path = /add a profile to (.*?), or try/.exec(err.message || '');
  if (path) $('first-run-config').textContent = path[1];
  // No profile, so no environment to name.
  $('env-badge').hidden = true;
  $('app').setAttribute('aria-busy', 'false');
  $('try-demo').addEventListener('click', async () => {
    const button = $('try-demo');
    button.disabled = true;
    button.textContent = 'Starting the demo…';
    setError($('first-run-error'), null);
    try {
      await invoke('try_demo');
      location.reload();
    } catch (e) {
      setError($('first-run-error'), e);
      button.disabled = false;
      button.textContent = 'Try the demo';
    }
  });
  $('try-demo').focus();
}

/**
 * Sign in with the form's username and password; `replace` (at the
 * session limit): 'oldest', or the listed session to end to make room.
 * Refused at the limit, the password stays and the list of live sessions
 * shows, each with "End this session" behind a confirmation.
 */
async function signInReplacing(replace) {
  const args = { username: $('username').value, password: $('password').value };
  const ended = replace === 'oldest' ? (limit && limit.sessions[0]) : replace;
  if (replace === 'oldest') args.replaceOldest = true;
  else if (replace) args.replaceSession = replace.id;
  try {
    accept(await invoke('sign_in', args));
    $('password').value = '';
    replaced = ended ? replacedNote(ended) : null;
    limit = null;
    // The provider ends the picked session only when the limit still held:
    // one that is still live was not ended (another ended meanwhile), and
    // the note would be wrong. Unsure (no list), the note stays.
    if (ended) {
      try {
        if ((await invoke('list_sessions')).some((s) => s.id === ended.id)) replaced = null;
      } catch { /* keep the note */ }
    }
  } catch (e) {
    const atLimit = !!e && e.code === 'session_limit';
    if (!atLimit) $('password').value = '';
    limit = atLimit ? { sessions: e.sessions || [], confirming: null } : null;
    throw e;
  } finally { renderLimit(); }
}

/** The session-limit list under the sign-in form. */
function renderLimit() {
  show($('limit-panel'), !!limit);
  const list = $('limit-list');
  if (!limit) { list.replaceChildren(); return; }
  list.replaceChildren(...limit.sessions.map((s, i) => {
    const li = document.createElement('li');
    li.dataset.testid = 'limit-row';
    const name = document.createElement('strong'); name.textContent = s.device_name;
    const facts = document.createElement('div'); facts.className = 'muted'; facts.textContent = sessionFacts(s);
    li.append(name, facts);
    if (limit.confirming !== i) {
      const end = document.createElement('button'); end.type = 'button'; end.className = 'danger';
      end.dataset.testid = 'limit-end-button'; end.textContent = 'End this session';
      end.setAttribute('aria-label', `End this session on ${s.device_name}`);
      end.addEventListener('click', () => { limit.confirming = i; renderLimit(); $('limit-confirm').focus(); });
      li.append(end);
      return li;
    }
    const ask = document.createElement('p'); ask.id = 'limit-ask';
    ask.textContent = `End the session on ${s.device_name} and sign in here? Whoever uses it there is signed out.`;
    const yes = document.createElement('button'); yes.type = 'button'; yes.className = 'danger'; yes.id = 'limit-confirm';
    yes.dataset.testid = 'limit-confirm'; yes.textContent = 'End it and sign in';
    yes.setAttribute('aria-describedby', 'limit-ask');
    yes.addEventListener('click', () => run(yes, () => signInReplacing(s), $('signin-error')));
    const no = document.createElement('button'); no.type = 'button'; no.dataset.testid = 'limit-keep'; no.textContent = 'Keep it';
    no.addEventListener('click', () => { limit.confirming = null; renderLimit(); });
    const actions = document.createElement('div'); actions.className = 'actions'; actions.append(yes, no);
    li.append(ask, actions);
    return li;
  }));
}

// A new sign-in, from the Ending-soon banner or a notification's button.
// Through the browser that is a new session replacing any still running;
// with a password, a session still running ends here and the sign-in form,
// its username filled, takes the password.
async function signInAgain() {
  if (view.sign_in_method === 'browser') { accept(await invoke('sign_in_browser')); return; }
  const user = view.user;
  if (view.state === 'active' || view.state === 'refreshing') {
    const report = await invoke('sign_out');
    accept(report.view);
  }
  render();
  if (user) $('username').value = user;
  $('password').focus();
}

async function init() {
  performance.mark('script-start'); // the desktop bench's cold-start breakdown
  wire();
  // Both answers are needed for the first screen: ask for them together.
  let list, first;
  try {
    [list, first] = await Promise.all([invoke('list_profiles'), invoke('session_view')]);
    performance.mark('answers');
  } catch (err) {
    if (err && err.code === 'not_configured') { showFirstRun(err); return; }
    throw err;
  }
  profiles = list.profiles;
  for (const p of profiles) if (p.view) views = newestViews(views, p.view);
  const configBanner = $('config-error-banner');
  if (list.config_error) { configBanner.textContent = errorText(list.config_error); show(configBanner, true); }
  renderProfiles();
  currentProfile = first.profile;
  accept(first);
  render();
  performance.mark('first-screen'); // the desktop bench's cold-start breakdown
  await listen('session://changed', (event) => {
    const previous = view && view.state;
    views = newestViews(views, event.payload);
    if (event.payload.profile !== currentProfile) { if (!adding) renderAccounts(); return; }
    accept(event.payload);
    render();
    // A new state (signed in, out, ended) reads all three again; a renewal
    // only the two the audit log feeds (the sessions list asks the
    // provider, which a renewal does not change).
    // (render() reads all three again when the state or session changes.)
    if (previous === view.state && view.state === 'active') { loadActivity(); loadMetrics(); }
  });
  // A notification's "Sign in again" (the shell has shown the window).
  await listen('notice://sign-in-again', () => {
    const inSession = view.state === 'active' || view.state === 'refreshing';
    run(null, signInAgain, $(inSession ? 'session-error' : 'signin-error'));
  });
  // A transition between the first answer and the listener is not lost.
  accept(await invoke('session_view'));
  render();
  loadActivity();
  loadAbout();
  // Added on the first-run screen, the page started again: its sign-in.
  const added = sessionStorage.getItem('sign-in-after-add');
  sessionStorage.removeItem('sign-in-after-add');
  if (added && added === currentProfile && !(view.state === 'active' || view.state === 'refreshing')) await signInNew();
}

init().catch((err) => { document.body.textContent = 'The app could not start: ' + errorText(err); });
