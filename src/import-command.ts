/** `hms import`: filled in by the record-exchange work. */
import type { Config } from './config.js';

export const IMPORT_USAGE = '';

/** Runs `hms import ARGS`; resolves to the process exit code. */
export async function importCommand(_config: Config, _args: string[]): Promise<number> {
  process.stderr.write('hms: import is not implemented yet\n');
  return 1;
}
