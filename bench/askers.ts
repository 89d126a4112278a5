/**
 * The askers of the access scenarios, made on the bench database: an assigned doctor (the seeded
 * doctor with the most patients as primary doctor, reading those patients), a patient (an account
 * linked to one seeded patient, reading its own record) and a system client (reading any patient,
 * with a scope of Patient.rs), each authorized and audited as in production.
 */
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { startSession } from '../src/auth/sessions.js';
import { issueClientToken } from '../src/auth/client-tokens.js';
import { insertClient } from '../src/db/client-repository.js';
import { seededIds } from './seed.js';

export interface Askers {
  inputs: { doctor: { token: string; ids: string[] }; patient: { token: string; ids: string[] }; system: { token: string; ids: string[] } };
  clientId: string;
}

const SYSTEM_SCOPE = 'system/Patient.rs';

/** Makes the three askers (a new patient account and client each run). */
export async function askers(db: Knex): Promise<Askers> {
  const top = (await db('patients').whereNotNull('primary_doctor_id').groupBy('primary_doctor_id').select('primary_doctor_id as doctor').count({ n: '*' })
    .orderBy('n', 'desc').first()) as { doctor: string } | undefined;
  if (!top) throw new Error('the bench database has no seeded doctor');
  const doctorIds = ((await db('patients').where({ primary_doctor_id: top.doctor }).whereNull('deleted_at').select('id')) as { id: string }[]).map((r) => r.id);
  const doctor = { token: await startSession(db, top.doctor, { ttlSeconds: 4 * 3600, userAgent: 'hms-bench' }), ids: doctorIds };

  const own = (await seededIds(db, 1))[0]!;
  const userId = uuidv7();
  await db('users').insert({
    id: userId, email: `bench-patient-${randomBytes(4).toString('hex')}@bench.example.org`, password_hash: '!', name: 'Bench patient', role: 'patient', status: 'active',
  });
  await db('patients').where({ id: own }).update({ user_id: userId });
  const patient = { token: await startSession(db, userId, { ttlSeconds: 4 * 3600, userAgent: 'hms-bench' }), ids: [own] };

  const client = await insertClient(db, { name: 'bench system', kind: 'ehr', jwksUrl: 'https://bench.example.org/jwks', scope: SYSTEM_SCOPE });
  const all = await seededIds(db, Number.MAX_SAFE_INTEGER);
  const system = { token: '', ids: all };
  const out: Askers = { inputs: { doctor, patient, system }, clientId: client.id };
  await refreshSystemToken(db, out);
  return out;
}

/** A new access token for the system asker (tokens live at most 300 s). */
export async function refreshSystemToken(db: Knex, a: Askers): Promise<void> {
  a.inputs.system.token = (await issueClientToken(db, { clientId: a.clientId, scope: SYSTEM_SCOPE, ttlSeconds: 300 })).token;
}
