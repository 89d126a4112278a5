/**
 * The floor: the least a Node server can do for each benchmark scenario on the same stack
 * (Fastify 5 + mysql2, a pool of the same size as HMS's, the same patients table) with no FHIR,
 * no auth, no audit, no history, no search index. run.ts starts it as a child process, like HMS,
 * so neither shares an event loop with the load generator.
 *
 *   GET  /floor/patient/:id        SELECT * FROM patients WHERE id = ?
 *   GET  /floor/patient?name=Smi   SELECT * FROM patients WHERE last_name LIKE 'Smi%' LIMIT 20
 *   POST /floor/patient            INSERT INTO patients ... (the row is returned)
 *   GET  /floor/observation?patient=&code=&date=
 *                                  the observations of a patient with a LOINC code since a date,
 *                                  with their vitals / lab_results rows (20, by id)
 *   GET  /floor/everything/:id     the patient row, its rows in every clinical and financial
 *                                  table, and the users they refer to
 *   GET  /floor/immunization/:id   SELECT resource FROM fhir_resources (the generic store) by primary key:
 *                                  the JSON as stored
 *   GET  /floor/immunization?patient=&date=
 *                                  a patient's Immunizations with a date range reaching on or past the
 *                                  date (YYYY-MM-DD): search_token (patient) joined with
 *                                  fhir_resources, search_date in an EXISTS, 20 by id (index order)
 *   GET  /health                   SELECT 1
 *
 * Environment: FLOOR_PORT, FLOOR_DATABASE_URL (mysql://...), FLOOR_POOL.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { MYSQL_SESSION_SETUP, mysqlConnection } from '../src/db/knex.js';

const port = Number(process.env.FLOOR_PORT ?? 0);
const poolSize = Number(process.env.FLOOR_POOL ?? 10);

// The same connection settings HMS's knex pool uses.
const pool = mysql.createPool({ ...mysqlConnection(String(process.env.FLOOR_DATABASE_URL)), connectionLimit: poolSize });
pool.pool.on('connection', (conn) => {
  conn.query(MYSQL_SESSION_SETUP, (err) => {
    if (err) process.stderr.write(`floor: setting up a connection failed: ${err.message}\n`);
  });
});

const app = Fastify({ logger: false });

app.get('/health', async () => {
  await pool.query('SELECT 1');
  return { status: 'ok' };
});

app.get<{ Params: { id: string } }>('/floor/patient/:id', async (request, reply) => {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM patients WHERE id = ?', [request.params.id]);
  if (!rows[0]) return reply.code(404).send({ error: 'not found' });
  return rows[0];
});

app.get<{ Querystring: { name?: string } }>('/floor/patient', async (request) => {
  const prefix = (request.query.name ?? '').replace(/[\\%_]/g, (c) => '\\' + c);
  const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM patients WHERE last_name LIKE ? LIMIT 20', [prefix + '%']);
  return rows;
});

interface NewPatient { family?: string; given?: string; gender?: string; birthDate?: string }

app.post<{ Body: NewPatient }>('/floor/patient', async (request, reply) => {
  const b = request.body ?? {};
  const now = new Date().toISOString().slice(0, 19).replace('T', ' ');
  const row = {
    id: randomUUID(),
    first_name: b.given ?? '',
    last_name: b.family ?? '',
    date_of_birth: b.birthDate ?? '0001-01-01',
    gender: b.gender ?? 'prefer_not_to_say',
    status: 'active',
    version_id: 1,
    created_at: now,
    updated_at: now,
  };
  await pool.query('INSERT INTO patients SET ?', [row]);
  return reply.code(201).send(row);
});

// The observations projection joined with the rows it stands for, as HMS reads them.
const OBSERVATION_SELECT = `SELECT o.*, v.*, l.* FROM observations o
  LEFT JOIN vitals v ON v.id = o.source_id AND o.source = 'vitals'
  LEFT JOIN lab_results l ON l.id = o.source_id AND o.source = 'lab'`;

app.get<{ Querystring: { patient?: string; code?: string; date?: string } }>('/floor/observation', async (request) => {
  const { patient, code, date } = request.query;
  const [rows] = await pool.query<RowDataPacket[]>(
    `${OBSERVATION_SELECT} WHERE o.patient_id = ? AND o.code_system = 'http://loinc.org' AND o.code = ? AND o.effective_at >= ? ORDER BY o.id LIMIT 21`,
    [patient, code, date],
  );
  return rows.slice(0, 20);
});

app.get<{ Params: { id: string } }>('/floor/immunization/:id', async (request, reply) => {
  const [rows] = await pool.query<RowDataPacket[]>("SELECT resource FROM fhir_resources WHERE resource_type = 'Immunization' AND id = ?", [request.params.id]);
  if (!rows[0]) return reply.code(404).send({ error: 'not found' });
  return reply.type('application/json').send(String(rows[0].resource));
});

const DAY_MS = 86_400_000;

// HMS's `date=ge<day>` on an index row's range [low, high): high >= day start AND (high > day end OR low >= day start).
// Ordered by the token row's resource_id (= r.id): the index lookup's own order, so MariaDB needs
// no temporary table (ORDER BY r.id sorted the rows with their LONGTEXT in an on-disk temporary table).
const IMMUNIZATION_SEARCH = `SELECT r.id, r.resource FROM search_token p
  JOIN fhir_resources r ON r.resource_type = p.resource_type AND r.id = p.resource_id
  WHERE p.resource_type = 'Immunization' AND p.param = 'patient' AND p.code = ? AND r.deleted_at IS NULL
    AND EXISTS (SELECT 1 FROM search_date d WHERE d.resource_type = 'Immunization' AND d.param = 'date' AND d.resource_id = r.id
      AND d.high >= ? AND (d.high > ? OR d.low >= ?))
  ORDER BY p.resource_id LIMIT 21`;

app.get<{ Querystring: { patient?: string; date?: string } }>('/floor/immunization', async (request, reply) => {
  const { patient, date } = request.query;
  const lo = Date.parse(`${date ?? ''}T00:00:00Z`);
  if (!patient || !Number.isFinite(lo)) return reply.code(400).send({ error: 'patient and date (YYYY-MM-DD) are required' });
  const [rows] = await pool.query<RowDataPacket[]>(IMMUNIZATION_SEARCH, [`Patient/${patient}`, lo, lo + DAY_MS, lo]);
  return reply.type('application/json').send(`[${rows.slice(0, 20).map((r) => String(r.resource)).join(',')}]`);
});

const COMPARTMENT_TABLES = ['appointments', 'visits', 'medical_conditions', 'prescriptions', 'billing', 'insurance'];

app.get<{ Params: { id: string } }>('/floor/everything/:id', async (request, reply) => {
  const id = request.params.id;
  const [patients] = await pool.query<RowDataPacket[]>('SELECT * FROM patients WHERE id = ?', [id]);
  if (!patients[0]) return reply.code(404).send({ error: 'not found' });
  const out: Record<string, RowDataPacket[]> = { patients };
  for (const table of COMPARTMENT_TABLES) [out[table]] = await pool.query<RowDataPacket[]>(`SELECT * FROM ${table} WHERE patient_id = ? ORDER BY id`, [id]);
  [out.observations] = await pool.query<RowDataPacket[]>(`${OBSERVATION_SELECT} WHERE o.patient_id = ? ORDER BY o.id`, [id]);
  const users = new Set<string>();
  for (const rows of Object.values(out)) for (const r of rows) for (const c of ['doctor_id', 'primary_doctor_id', 'diagnosed_by', 'recorded_by', 'ordered_by']) if (r[c]) users.add(String(r[c]));
  [out.users] = users.size ? await pool.query<RowDataPacket[]>('SELECT * FROM users WHERE id IN (?)', [[...users]]) : [[] as RowDataPacket[]];
  return out;
});

const close = (): void => {
  app.close().then(() => pool.end()).then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', close);
process.on('SIGINT', close);

await app.listen({ port, host: '127.0.0.1' });
