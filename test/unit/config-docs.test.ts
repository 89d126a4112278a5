import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const schema = JSON.parse(readFileSync(`${root}schemas/config.schema.json`, 'utf8')) as { properties: Record<string, { default?: unknown }> };
const readme = readFileSync(`${root}README.md`, 'utf8');

t.test('the README configuration table documents every variable of the config schema with its default', async (t) => {
  for (const [name, prop] of Object.entries(schema.properties)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    t.ok(row, `${name} has a row`);
    if (row && prop.default !== undefined) t.match(row, `\`${String(prop.default)}\``, `${name} shows its default ${String(prop.default)}`);
  }
});
