// Runs the client's unit tests (tests/*.test.mjs) with Node's test runner. They import the
// TypeScript sources, so each is bundled by esbuild into dist-tests/ first.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const tests = readdirSync(join(root, 'tests')).filter((name) => name.endsWith('.test.mjs'));
const outdir = join(root, 'dist-tests');
await build({
  entryPoints: tests.map((name) => join(root, 'tests', name)),
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  outExtension: { '.js': '.mjs' },
  external: ['node:*'],
  logLevel: 'warning',
});
const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...tests.map((name) => join(outdir, name))], { stdio: 'inherit' });
process.exit(run.status ?? 1);
