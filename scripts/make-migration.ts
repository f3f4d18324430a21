import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** `npm run db:make-migration NAME`: a timestamped migration file, registered in migrations/index.ts. */
const name = process.argv[2];
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:make-migration <name_in_snake_case>');
  process.exit(1);
}
const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
const id = `${stamp}_${name}`;
const folder = new URL('../../migrations/', import.meta.url);
const source = fileURLToPath(new URL(`${id}.ts`, folder));
await writeFile(
  source,
  `import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema;
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema;
}
`,
  { flag: 'wx' },
);
const indexPath = fileURLToPath(new URL('index.ts', folder));
const alias = name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
let index = await readFile(indexPath, 'utf8');
index = index
  .replace(/(\nconst MIGRATIONS)/, `import * as ${alias} from './${id}.js';\n$1`)
  .replace('  // new migrations go above this line', `  ['${id}', ${alias}],\n  // new migrations go above this line`);
await writeFile(indexPath, index);
console.log(`created migrations/${id}.ts and registered it in migrations/index.ts`);
