import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
const dirs: string[] = [];

/** Runs the project's dependency-cruiser rules over a tree of files made for the case. */
async function cruise(files: Record<string, string>): Promise<{ ok: boolean; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'payonce-layering-'));
  dirs.push(dir);
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'nodenext' } }));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  try {
    const { stdout } = await run(
      join(ROOT, 'node_modules/.bin/depcruise'),
      [
        ...new Set(Object.keys(files).map((path) => path.split('/')[0]!)),
        '--config',
        join(ROOT, '.dependency-cruiser.cjs'),
      ],
      { cwd: dir },
    );
    return { ok: true, output: stdout };
  } catch (error) {
    return { ok: false, output: String((error as { stdout?: string }).stdout) };
  }
}

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('npm run lint: the layering rules (.dependency-cruiser.cjs)', () => {
  it('pass a tree that follows them', async () => {
    const result = await cruise({
      'src/shared/config.ts': 'export const x = 1;\n',
      'src/api/app.ts': "import { x } from '../shared/config.js';\nexport const y = x;\n",
      'src/worker/main.ts': "import { x } from '../shared/config.js';\nexport const z = x;\n",
    });
    expect(result.ok, result.output).toBe(true);
  });

  it.each([
    [
      'shared importing the API',
      'shared-uses-no-process',
      { 'src/shared/a.ts': "import '../api/b.js';\n", 'src/api/b.ts': '' },
    ],
    [
      'shared importing the worker',
      'shared-uses-no-process',
      { 'src/shared/a.ts': "import '../worker/b.js';\n", 'src/worker/b.ts': '' },
    ],
    [
      'the API importing the worker',
      'api-not-worker',
      { 'src/api/a.ts': "import '../worker/b.js';\n", 'src/worker/b.ts': '' },
    ],
    [
      'the worker importing the API',
      'worker-not-api',
      { 'src/worker/a.ts': "import '../api/b.js';\n", 'src/api/b.ts': '' },
    ],
    [
      'product code importing a test helper',
      'product-code-not-dev-code',
      { 'src/shared/a.ts': "import '../../test/support/b.js';\n", 'test/support/b.ts': '' },
    ],
    [
      'an import cycle',
      'no-circular',
      {
        'src/shared/a.ts': "import './b.js';\nexport const a = 1;\n",
        'src/shared/b.ts': "import './a.js';\nexport const b = 2;\n",
      },
    ],
  ])('fail on %s', async (_case, rule, files) => {
    const result = await cruise(files);
    expect(result.ok).toBe(false);
    expect(result.output).toContain(rule);
  });
});
