import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

// Works from src/ (tsx, tap) and from dist/src/ (compiled): walk up to the folder holding package.json.
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + dir);
    dir = up;
  }
  return dir;
}

/** Root of the HMS package (the folder with package.json). */
export const projectRoot = findRoot();

/** Absolute path of a file under schemas/. */
export function schemaPath(name: string): string {
  return join(projectRoot, 'schemas', name);
}
