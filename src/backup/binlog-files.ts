/** Binlog files and the server they belong to: names (`binlog.000042`) and positions are one server's own. */
import type { Knex } from 'knex';

/** A MariaDB server, as its binlog file names belong to it. */
export interface ServerIdentity { serverId: number; hostname: string; port: number; binlogBase: string }

/** A binlog file name's base and number. */
export function binlogNumber(name: string): { base: string; n: number } | undefined {
  const m = /^(.+)\.(\d{6,})$/.exec(name);
  return m ? { base: m[1]!, n: Number(m[2]) } : undefined;
}

/** Binlog files only, in their order (a base, then its numbers). */
export function sortBinlogs(names: string[]): string[] {
  return names.filter((f) => binlogNumber(f)).sort((a, b) => {
    const x = binlogNumber(a)!;
    const y = binlogNumber(b)!;
    return x.base === y.base ? x.n - y.n : x.base < y.base ? -1 : 1;
  });
}

/** The server a connection reaches: binlog file names and positions are its own. */
export async function serverIdentity(db: Knex): Promise<ServerIdentity> {
  const [[v]] = (await db.raw('SELECT @@server_id AS id, @@hostname AS host, @@port AS port, @@log_bin_basename AS base')) as [{ id: number; host: string; port: number; base: string | null }[]];
  return { serverId: Number(v!.id), hostname: String(v!.host), port: Number(v!.port), binlogBase: String(v!.base ?? '').split('/').pop() ?? '' };
}

export const sameServer = (a: ServerIdentity, b: ServerIdentity): boolean => a.serverId === b.serverId && a.hostname === b.hostname && a.port === b.port && a.binlogBase === b.binlogBase;
