// Builds the web client into dist/ for the `web` component to embed:
//   dist/index.html      the page (its `@WEB_SOCKET_ORIGIN@` is filled in by the component)
//   dist/app/*           the script, the styles and the icon, content-hashed names
//   dist/files.json      every file with its route, media type, caching and ETag
// Run by scripts/build-web-client.sh (which skips it when no input changed).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');
const assets = join(dist, 'app');

const MEDIA_TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8',
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

const result = await build({
  entryPoints: [join(root, 'src/main.tsx')],
  outdir: assets,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  // Browsers of the last two years: no transpiling of what they all run natively.
  target: ['chrome120', 'firefox121', 'safari17'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.keys(result.metafile.outputs).map((path) => join(process.cwd(), path));
const script = outputs.find((path) => path.endsWith('.js'));
const styles = outputs.find((path) => path.endsWith('.css'));
if (script === undefined || styles === undefined) throw new Error(`esbuild wrote ${outputs.join(', ')}`);

const iconSource = readFileSync(join(root, 'src/icon.svg'));
const icon = join(assets, `icon-${fingerprint(iconSource).slice(0, 8)}.svg`);
writeFileSync(icon, iconSource);

const route = (path) => `/${relative(dist, path)}`;
const page = readFileSync(join(root, 'index.html'), 'utf8')
  .replace('@SCRIPT@', route(script))
  .replace('@STYLES@', route(styles))
  .replace('@ICON@', route(icon));
const index = join(dist, 'index.html');
writeFileSync(index, page);

const files = [
  { route: '/', path: index, immutable: false },
  ...[script, styles, icon].map((path) => ({ route: route(path), path, immutable: true })),
].map(({ route, path, immutable }) => ({
  route,
  file: relative(dist, path),
  media_type: MEDIA_TYPES[path.slice(path.lastIndexOf('.'))],
  immutable,
  etag: fingerprint(readFileSync(path)).slice(0, 16),
}));
writeFileSync(join(dist, 'files.json'), `${JSON.stringify(files, null, 2)}\n`);
for (const file of files) console.log(`web client: ${file.route} (${basename(file.file)})`);

function fingerprint(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}
