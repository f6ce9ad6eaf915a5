// Contrast of the window's colours, light and dark (WCAG 2.1 AA): text at
// least 4.5:1 on what it is drawn on, and what is not text but must be seen
// (field borders, button borders, the focus ring) at least 3:1. axe-core in
// the E2E suite (s26, s27) checks the text it sees on each screen; this
// checks every pair the stylesheet can draw, including the focus ring and
// borders, which axe-core does not measure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const css = readFileSync(new URL('../../ui/styles.css', import.meta.url), 'utf8');

function variables(block) {
  const vars = {};
  for (const m of block.matchAll(/--([a-z-]+):\s*(#[0-9a-fA-F]{6})/g)) vars[m[1]] = m[2];
  return vars;
}

const light = variables(css.slice(css.indexOf(':root {'), css.indexOf('}', css.indexOf(':root {'))));
const darkAt = css.indexOf('@media (prefers-color-scheme: dark)');
const dark = { ...light, ...variables(css.slice(darkAt, css.indexOf('}', darkAt))) };

function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

const TEXT = [
  ['ink', 'bg'], ['ink', 'card'], ['muted', 'card'], ['muted', 'bg'], ['blue', 'card'], ['blue', 'field'],
  ['on-blue', 'blue'], ['red', 'card'], ['green', 'card'], ['amber', 'card'], ['ink', 'field'],
  ['green', 'good-bg'], ['blue', 'busy-bg'], ['idle-ink', 'idle-bg'], ['red', 'bad-bg'],
  ['amber', 'attention-bg'], ['red', 'attention-bg'], ['badge-ink', 'badge-bg'], ['ink', 'warn-bg'],
  ['ink', 'info-bg'], ['ink', 'notice-bg'], ['ink', 'demo-bg'], ['ink', 'soft'], ['ink', 'state-bg'],
  ['muted', 'soft'],
];
const NON_TEXT = [
  ['field-line', 'field'], ['field-line', 'card'], ['blue', 'card'], ['focus', 'card'], ['focus', 'bg'],
  ['bar-focus', 'bar'], ['green', 'track'], ['red', 'track'],
];

for (const [scheme, vars] of [['light', light], ['dark', dark]]) {
  test(`${scheme}: every colour pair is defined`, () => {
    for (const [a, b] of [...TEXT, ...NON_TEXT]) {
      assert.ok(vars[a] && vars[b], `--${a} or --${b} missing in the ${scheme} scheme`);
    }
  });
  test(`${scheme}: text is at least 4.5:1 on its background`, () => {
    for (const [fg, bg] of TEXT) {
      const r = contrast(vars[fg], vars[bg]);
      assert.ok(r >= 4.5, `--${fg} ${vars[fg]} on --${bg} ${vars[bg]}: ${r.toFixed(2)}:1`);
    }
  });
  test(`${scheme}: borders and the focus ring are at least 3:1`, () => {
    for (const [fg, bg] of NON_TEXT) {
      const r = contrast(vars[fg], vars[bg]);
      assert.ok(r >= 3, `--${fg} ${vars[fg]} against --${bg} ${vars[bg]}: ${r.toFixed(2)}:1`);
    }
  });
}

test('the dark scheme changes the page, not just one colour', () => {
  assert.ok(luminance(dark.bg) < 0.05 && luminance(light.bg) > 0.8, `${light.bg} / ${dark.bg}`);
});
