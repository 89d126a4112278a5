/** `hms export`: filled in by the record-exchange work. */
import type { Config } from './config.js';

export const EXPORT_USAGE = '';

/** Runs `hms export ARGS`; resolves to the process exit code. */
export async function exportCommand(_config: Config, _args: string[]): Promise<number> {
  process.stderr.write('hms: export is not implemented yet\n');
  return 1;
}
