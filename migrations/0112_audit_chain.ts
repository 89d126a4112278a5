import type { Knex } from 'knex';
import { dialectOf } from '../src/db/dialect.js';
import { inTransaction } from '../src/db/transactions.js';
import { AUDIT_GENESIS_HASH, securityLogHash } from '../src/db/audit-hash.js';
import { createSeedTable, timestampColumn } from './helpers.js';

const TABLE = 'security_logs';
const HEAD = 'audit_chain';
const BATCH = 500;

type Row = Record<string, unknown>;

/**
 * Extension: the head of the security log's hash chain (docs/audit-log.md), one row (id 1): the
 * last position taken (last_seq) and its hash. Every append locks it, so all API processes append
 * one chain in order.
 *
 * Then the one-time backfill: every row that existed before the chain gets patient_id (its
 * resource when that is a Patient) and its place in the chain, in (timestamp, id) order, so the
 * chain covers the whole table. This is the only code that ever updates security_logs rows. It
 * runs in batches, each in its own transaction with the head, so a large table does not become
 * one huge transaction, and a run that stopped half-way resumes where it stopped. Rows that
 * API processes of the previous release write meanwhile are chained at the end.
 */
export const config = { transaction: false };

const now = (): string => new Date().toISOString().slice(0, 19).replace('T', ' ');

/** The head, created when absent: after the last row already chained (a re-run), else empty. */
async function ensureHead(knex: Knex): Promise<void> {
  if (await knex(HEAD).where({ id: 1 }).first()) return;
  const last = (await knex(TABLE).whereNotNull('seq').orderBy('seq', 'desc').first('seq', 'hash')) as Row | undefined;
  await knex(HEAD).insert({ id: 1, last_seq: last ? Number(last.seq) : 0, last_hash: last ? String(last.hash) : AUDIT_GENESIS_HASH, updated_at: now() });
}

/** `col = CASE id WHEN ? THEN ? ... END` with its bindings. */
function caseOf(col: string, rows: Row[], value: (r: Row) => unknown): { sql: string; bindings: unknown[] } {
  return {
    sql: `?? = CASE ?? ${rows.map(() => 'WHEN ? THEN ?').join(' ')} END`,
    bindings: [col, 'id', ...rows.flatMap((r) => [r.id, value(r)])],
  };
}

/**
 * Chains the next batch of unchained rows that `select` picks (ordered), under the head's lock.
 * Returns the last row chained, or undefined when none was left.
 */
async function chainBatch(knex: Knex, select: (q: Knex.QueryBuilder) => void): Promise<Row | undefined> {
  return inTransaction(knex, async (trx) => {
    const mysql = dialectOf(trx) === 'mysql';
    const head = mysql
      ? ((await trx.raw(`SELECT last_seq, last_hash FROM ${HEAD} WHERE id = 1 FOR UPDATE`)) as [Row[]])[0][0]!
      : ((await trx.raw(`UPDATE ${HEAD} SET updated_at = updated_at WHERE id = 1 RETURNING last_seq, last_hash`)) as Row[])[0]!;
    const q = trx(TABLE).whereNull('seq').select('*').limit(BATCH);
    select(q);
    const rows = (await q) as Row[];
    if (rows.length === 0) return undefined;
    let seq = Number(head.last_seq);
    let hash = String(head.last_hash);
    const chained = rows.map((r): Row => {
      seq += 1;
      const row: Row = { ...r, seq, prev_hash: hash, patient_id: r.patient_id ?? (r.resource_type === 'Patient' ? r.resource_id : null) };
      hash = securityLogHash(row);
      return { ...row, hash };
    });
    const sets = [caseOf('seq', chained, (r) => r.seq), caseOf('prev_hash', chained, (r) => r.prev_hash), caseOf('hash', chained, (r) => r.hash),
      caseOf('patient_id', chained, (r) => r.patient_id)];
    await trx.raw(
      `UPDATE ?? SET ${sets.map((s) => s.sql).join(', ')} WHERE ?? IS NULL AND ?? IN (${chained.map(() => '?').join(', ')})`,
      [TABLE, ...sets.flatMap((s) => s.bindings), 'seq', 'id', ...chained.map((r) => r.id)] as Knex.RawBinding[],
    );
    await trx(HEAD).where({ id: 1 }).update({ last_seq: seq, last_hash: hash, updated_at: now() });
    return rows[rows.length - 1];
  });
}

/** Chains every row without a place, oldest first. */
async function chainExistingRows(knex: Knex): Promise<void> {
  // rows without a timestamp sort first (NULL is lowest in both dialects), by id
  for (let last: Row | undefined = { id: '' }; last;) {
    const after = String(last.id);
    last = await chainBatch(knex, (q) => q.whereNull('timestamp').where('id', '>', after).orderBy('id'));
  }
  // then by (timestamp, id), keyset on the timestamp index rather than re-scanning chained rows
  let cursor: Row | undefined;
  for (;;) {
    const from = cursor;
    const last = await chainBatch(knex, (q) => {
      q.whereNotNull('timestamp').orderBy([{ column: 'timestamp' }, { column: 'id' }]);
      if (from) q.where((w) => w.where('timestamp', '>', from.timestamp as string).orWhere((x) => x.where('timestamp', from.timestamp as string).where('id', '>', from.id as string)));
    });
    if (!last) break;
    cursor = last;
  }
  // rows written behind the cursor meanwhile (by processes of the previous release), if any
  while (await chainBatch(knex, (q) => q.orderBy([{ column: 'timestamp' }, { column: 'id' }])));
}

export async function up(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable(HEAD))) {
    await createSeedTable(knex, HEAD, (t) => {
      t.integer('id').notNullable().primary();
      t.bigInteger('last_seq').notNullable();
      t.specificType('last_hash', 'CHAR(64)').notNullable();
      timestampColumn(t, 'updated_at').nullable();
    });
  }
  await ensureHead(knex);
  await chainExistingRows(knex);
}

export async function down(knex: Knex): Promise<void> {
  // the rows keep their places; running up again resumes the chain after the last of them
  await knex.schema.dropTableIfExists(HEAD);
}
