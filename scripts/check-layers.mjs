// core/src's layers import one way, down: a module may use its own layer
// and the layers listed before it (the order core/src/lib.rs documents),
// never one after it. Tests are left out (a test may use the test kit,
// which stands on the engine). Run by scripts/test.sh:
// `node scripts/check-layers.mjs`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const LAYERS = ['error', 'os', 'net', 'token', 'storage', 'insight', 'profile', 'view', 'provider', 'engine', 'support'];
const root = join(new URL('.', import.meta.url).pathname, '..', 'core', 'src');

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'tests' ? [] : files(path);
    return name.endsWith('.rs') && name !== 'tests.rs' ? [path] : [];
  });
}

const wrong = [];
for (const path of files(root)) {
  const rel = relative(root, path);
  const layer = rel.split(/[/.]/)[0];
  const rank = LAYERS.indexOf(layer);
  if (rank < 0) continue; // lib.rs, testkit.rs
  // The code before its tests module.
  const text = readFileSync(path, 'utf8').split(/\n#\[cfg\(test\)\]\nmod tests/)[0];
  text.split('\n').forEach((line, i) => {
    if (/^\s*\/\//.test(line)) return; // comments and docs may point anywhere
    for (const m of line.matchAll(/crate::([a-z_]+)/g)) {
      const used = LAYERS.indexOf(m[1]);
      if (used > rank) wrong.push(`core/src/${rel}:${i + 1}: ${layer} uses ${m[1]}, a layer above it`);
    }
  });
}
if (wrong.length) {
  console.error(`imports that point up:\n${wrong.join('\n')}`);
  process.exit(1);
}
console.log(`layers: every import in core/src points down (${LAYERS.join(' < ')})`);
