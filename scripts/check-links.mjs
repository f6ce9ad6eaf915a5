// The README's and docs/'s links between each other work: every relative
// link names a file that exists, and every #anchor a heading in it (GitHub's
// slugs). Run by scripts/test.sh: `node scripts/check-links.mjs`.
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

const slug = (h) => h.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');

// Headings outside code blocks, as GitHub makes anchors of them.
function anchors(path) {
  const out = new Set();
  let code = false;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('```')) code = !code;
    const m = !code && /^#{1,6} (.*)/.exec(line);
    if (m) out.add(slug(m[1]));
  }
  return out;
}

// Links outside code blocks and code spans.
function links(text) {
  const out = [];
  let code = false;
  text.split('\n').forEach((line, i) => {
    if (line.startsWith('```')) { code = !code; return; }
    if (code) return;
    const plain = line.replace(/`[^`]*`/g, '');
    for (const m of plain.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)) out.push({ target: m[1], line: i + 1 });
  });
  return out;
}

const broken = [];
for (const file of files) {
  const path = join(root, file);
  for (const { target, line } of links(readFileSync(path, 'utf8'))) {
    if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
    const [rel, anchor] = target.split('#');
    const to = rel ? join(dirname(path), rel) : path;
    if (!existsSync(to)) { broken.push(`${file}:${line}: ${target}: no file ${relative(root, to)}`); continue; }
    if (anchor && to.endsWith('.md') && !anchors(to).has(anchor)) broken.push(`${file}:${line}: ${target}: no heading #${anchor} in ${relative(root, to)}`);
  }
}
// Source files the text names (`core/src/engine/flight.rs`) exist: a
// file that moved is not left behind in the docs.
for (const file of files) {
  readFileSync(join(root, file), 'utf8').split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/\b((?:core|shell|src-tauri|sessionctl|playground|tests|e2e|ui|scripts)\/[\w./-]*\.(?:rs|js|mjs|sh|html|css))\b/g)) {
      if (!existsSync(join(root, m[1]))) broken.push(`${file}:${i + 1}: ${m[1]}: no such file`);
    }
  });
}
if (broken.length) {
  console.error(`broken links:\n${broken.join('\n')}`);
  process.exit(1);
}
console.log(`links: ${files.length} files checked, all links work`);
