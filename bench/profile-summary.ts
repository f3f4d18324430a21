import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/**
 * `npm run bench:profile -- FILE.cpuprofile ...`: where a process's CPU went, from the profiles
 * `npm run bench -- --profile DIR` writes. Self time (time in the function itself, not in what
 * it calls) summed by package and by function, as a share of the time the process was busy.
 * Flame graphs of the same files: Chrome DevTools (Performance, load profile) or speedscope.
 */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

const NOT_BUSY = new Set(['(idle)', '(program)']);

/** The package a frame's code belongs to: an npm package, payonce's own code, or Node's. */
function owner(url: string, functionName: string): string {
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (dependency) return dependency;
  if (url.includes('/dist/') || url.includes('/src/') || url.includes('/bench/')) return 'payonce';
  if (url.startsWith('node:')) return 'node';
  return url ? 'other' : `native ${functionName || '(anonymous)'}`;
}

function summarise(profile: CpuProfile, top: number): string[] {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, index) => {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    if (NOT_BUSY.has(functionName)) return;
    const micros = profile.timeDeltas[index] ?? 0;
    busy += micros;
    const pkg = owner(url, functionName);
    byOwner.set(pkg, (byOwner.get(pkg) ?? 0) + micros);
    const where = url ? `${url.split('/').slice(-2).join('/')}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'} ${where} [${pkg}]`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  });
  const rows = (entries: Map<string, number>) =>
    [...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([name, micros]) =>
          `  ${((micros / busy) * 100).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(6)} ms  ${name}`,
      );
  return [
    `busy ${(busy / 1000).toFixed(0)} ms (idle and unattributed time left out)`,
    'by package (self time):',
    ...rows(byOwner),
    'by function (self time):',
    ...rows(byFunction),
  ];
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: npm run bench:profile -- FILE.cpuprofile [...]');
  process.exit(2);
}
for (const file of files) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  console.log([`${basename(file)}`, ...summarise(profile, 15), ''].join('\n'));
}
