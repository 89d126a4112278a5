/**
 * Storage of Observations: a row of the observations projection plus its source, one measurement
 * of a vitals row or one lab_results row. The write path hands over the projection's columns with
 * the source's columns prefixed (`v_` vitals, `l_` lab_results); reads join the source back under
 * the same prefixes. See docs/resources/Observation.md.
 */
import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { Row, StorageHooks } from './resource-repository.js';
import { measureByName, measuresOfRow } from '../mappers/vitals-mapper.js';
import { appendRows } from './write-buffer.js';

const VITALS_COLUMNS = [
  'id', 'patient_id', 'visit_id', 'recorded_by', 'recorded_at', 'systolic_bp', 'diastolic_bp', 'heart_rate', 'respiratory_rate', 'temperature',
  'temperature_unit', 'oxygen_saturation', 'weight', 'weight_unit', 'height_feet', 'height_inches', 'height_cm', 'bmi', 'pain_scale', 'notes',
];
const LAB_COLUMNS = [
  'id', 'patient_id', 'visit_id', 'ordered_by', 'test_name', 'test_code', 'test_category', 'result_value', 'result_unit', 'reference_range',
  'status', 'abnormal_flag', 'ordered_date', 'collection_date', 'result_date', 'lab_comments', 'interpretation',
];

/** Splits a written row into the projection's columns and the source row's (unprefixed). */
function split(row: Row): { projection: Row; source: Row } {
  const projection: Row = {};
  const source: Row = {};
  for (const [k, v] of Object.entries(row)) {
    if (k.startsWith('v_') || k.startsWith('l_')) source[k.slice(2)] = v;
    else projection[k] = v;
  }
  return { projection, source };
}

const sourceTable = (source: unknown): string => (source === 'vitals' ? 'vitals' : 'lab_results');

/** Creates the source row of a projection row and returns its id. */
async function attach(trx: Knex, projection: Row, source: Row): Promise<string> {
  const id = uuidv7();
  await appendRows(trx, sourceTable(projection.source), [{
    ...source, id, patient_id: projection.patient_id, visit_id: projection.visit_id ?? null,
    version_id: 1, created_at: projection.updated_at, updated_at: projection.updated_at,
  }]);
  return id;
}

/**
 * Removes an Observation's part of its source row: a lab_results row goes; a vitals measurement is
 * cleared, and the vitals row goes when no other Observation reads from it.
 */
async function detach(trx: Knex, current: Row, at: unknown): Promise<void> {
  if (current.source !== 'vitals') {
    await trx('lab_results').where({ id: current.source_id }).delete();
    return;
  }
  const others = await trx('observations').where({ source: 'vitals', source_id: current.source_id }).whereNot({ id: current.id }).first('id');
  if (!others) {
    await trx('vitals').where({ id: current.source_id }).delete();
    return;
  }
  const measure = measureByName(String(current.measure));
  const cleared = Object.fromEntries((measure?.columns ?? []).map((c) => [c, null]));
  await trx('vitals').where({ id: current.source_id }).update({ ...cleared, version_id: trx.raw('version_id + 1'), updated_at: at });
}

async function currentOf(trx: Knex, id: string): Promise<Row> {
  const row = (await trx('observations').where({ id }).first()) as Row | undefined;
  if (!row) throw new Error(`observation ${id} has no projection row`);
  return row;
}

export const observationStorage: StorageHooks = {
  joinReads(db, q) {
    q.leftJoin('vitals as v', (j) => { j.on('v.id', '=', 't.source_id').andOn('t.source', '=', db.raw('?', ['vitals'])); })
      .leftJoin('lab_results as l', (j) => { j.on('l.id', '=', 't.source_id').andOn('t.source', '=', db.raw('?', ['lab'])); })
      .select(VITALS_COLUMNS.map((c) => `v.${c} as v_${c}`))
      .select(LAB_COLUMNS.map((c) => `l.${c} as l_${c}`))
      .select(db.raw('COALESCE(v.patient_id, l.patient_id) as s_patient_id'))
      .select(db.raw('CASE WHEN v.id IS NOT NULL THEN v.visit_id ELSE l.visit_id END as s_visit_id'));
  },
  async insertRow(trx, id, row) {
    const { projection, source } = split(row);
    const sourceId = await attach(trx, projection, source);
    await appendRows(trx, 'observations', [{ ...projection, id, source_id: sourceId }]);
  },
  async updateRow(trx, id, row) {
    const { projection, source } = split(row);
    const current = await currentOf(trx, id);
    let sourceId = current.source_id;
    if (current.source === projection.source && current.measure === projection.measure) {
      await trx(sourceTable(current.source)).where({ id: sourceId }).update({
        ...source, patient_id: projection.patient_id, visit_id: projection.visit_id ?? null,
        version_id: trx.raw('version_id + 1'), updated_at: projection.updated_at,
      });
    } else {
      await detach(trx, current, projection.updated_at);
      sourceId = await attach(trx, projection, source);
    }
    await trx('observations').where({ id }).update({ ...projection, source_id: sourceId });
  },
  async deleteRow(trx, id) {
    const current = await currentOf(trx, id);
    await trx('observations').where({ id }).delete();
    await detach(trx, current, current.updated_at);
  },
};

/**
 * Brings the projection of one vitals row up to date after a native change (a worker, an import):
 * measurements that appeared get a new Observation (new stable id), those whose columns were
 * cleared lose theirs, and the search columns of the others are recomputed by `project`.
 */
export async function syncVitalsProjection(trx: Knex, vitalsId: string, project: (row: Row, newId: () => string) => Row[]): Promise<void> {
  const row = (await trx('vitals').where({ id: vitalsId }).first()) as Row | undefined;
  const existing = (await trx('observations').where({ source: 'vitals', source_id: vitalsId })) as Row[];
  const wanted = row ? project(row, uuidv7) : [];
  const present = new Set<string>(row ? measuresOfRow(row).map((m) => m.name) : []);
  for (const e of existing) {
    if (e.measure !== 'panel' && !present.has(String(e.measure))) await trx('observations').where({ id: e.id }).delete();
  }
  for (const w of wanted) {
    const e = existing.find((x) => x.measure === w.measure);
    if (!e) await trx('observations').insert(w);
    else {
      const { id: _id, version_id: _v, created_at: _c, ...search } = w;
      await trx('observations').where({ id: e.id }).update(search);
    }
  }
}
