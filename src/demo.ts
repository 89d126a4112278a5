/**
 * The demo data of a first run (`npm start` on the embedded default, an empty database): a few
 * patients with their whole records (`hms seed`'s generator), one login per role with a random
 * password, and a lab client whose key pair is written under HMS_DATA_DIR/demo, so every
 * interaction can be tried at once. HMS_DEMO=0 turns it off; it never runs with DATABASE_URL (a
 * real deployment), nor on a database that has any user. The logins are printed once and kept in
 * HMS_DATA_DIR/demo/logins.txt (mode 600); the load itself is on the security log.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { exportJWK, generateKeyPair } from 'jose';
import type { Config } from './config.js';
import type { AuditLog } from './db/audit-log.js';
import { seedDatabase } from './db/seed/seed-all.js';
import { createAdmin } from './auth/admin.js';
import { createUser, toolActor } from './auth/accounts.js';
import { hashPassword } from './auth/passwords.js';
import { insertClient } from './db/client-repository.js';

export const DEMO_PATIENTS = 6;
export const DEMO_LAB_SCOPE = 'system/Observation.cu system/DiagnosticReport.c';
const DOMAIN = 'demo.hms.example.org';

export interface DemoLogin { role: string; email: string; password: string; note: string }

export interface Demo {
  logins: DemoLogin[];
  patients: number;
  lab: { clientId: string; keyFile: string };
  loginsFile: string;
}

const password = (): string => `demo-${randomBytes(9).toString('base64url')}`;

/** Whether this start should load the demo: embedded, not turned off, no user yet. */
export async function wantsDemo(db: Knex, config: Config): Promise<boolean> {
  if (config.DATABASE_URL || config.HMS_DEMO === '0') return false;
  return !(await db('users').first('id'));
}

export async function loadDemo(db: Knex, config: Config, auditLog: AuditLog, baseUrl: string): Promise<Demo> {
  const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
  const kid = `demo-lab-${randomUUID()}`;
  // all or nothing: a start that fails half-way loads the demo again next time
  const { logins, patients, clientId } = await db.transaction(async (trx) => {
    const seeded = await seedDatabase(trx, { patients: DEMO_PATIENTS, batch: DEMO_PATIENTS });
    const logins: DemoLogin[] = [];
    const admin = { role: 'admin', email: `admin@${DOMAIN}`, password: password(), note: 'everything, the admin API, /metrics' };
    await createAdmin(trx, { email: admin.email, password: admin.password, name: 'Demo Admin', cost: config.HMS_BCRYPT_COST });
    logins.push(admin);
    // the seeded doctor and nurse who have patients assigned get a login
    for (const role of ['doctor', 'nurse'] as const) {
      const staff = (await trx('users').where({ role }).whereIn('id', trx('patient_assignments').select('user_id')).orderBy('id').first('id', 'name')) as { id: string; name: string } | undefined
        ?? (await trx('users').where({ role }).orderBy('id').first('id', 'name')) as { id: string; name: string };
      const login = { role, email: `${role}@${DOMAIN}`, password: password(), note: `${staff.name}: the patients assigned to them` };
      await trx('users').where({ id: staff.id }).update({ email: login.email, password_hash: await hashPassword(login.password, config.HMS_BCRYPT_COST) });
      logins.push(login);
    }
    const patient = (await trx('patients').orderBy('id').first('id', 'first_name', 'last_name')) as { id: string; first_name: string; last_name: string };
    const accounts = { db: trx, bcryptCost: config.HMS_BCRYPT_COST };
    const patientLogin = { role: 'patient', email: `patient@${DOMAIN}`, password: password(), note: `${patient.first_name} ${patient.last_name}: their own record (Patient/${patient.id})` };
    await createUser(accounts, toolActor(trx), { email: patientLogin.email, password: patientLogin.password, role: 'patient', name: `${patient.first_name} ${patient.last_name}`, patient: `Patient/${patient.id}` });
    logins.push(patientLogin);
    const finance = { role: 'finance', email: `finance@${DOMAIN}`, password: password(), note: 'invoices and coverage' };
    await createUser(accounts, toolActor(trx), { email: finance.email, password: finance.password, role: 'finance', name: 'Demo Finance' });
    logins.push(finance);
    const client = await insertClient(trx, { name: 'Demo lab', kind: 'lab', scope: DEMO_LAB_SCOPE, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' }] } });
    return { logins, patients: seeded.patients, clientId: client.id };
  });

  const dir = join(config.HMS_DATA_DIR, 'demo');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = join(dir, 'lab-client.json');
  writeFileSync(keyFile, `${JSON.stringify({ client_id: clientId, token_url: `${baseUrl}/auth/token`, scope: DEMO_LAB_SCOPE, alg: 'ES384', kid, private_jwk: await exportJWK(privateKey) }, null, 2)}\n`, { mode: 0o600 });
  const loginsFile = join(dir, 'logins.txt');
  writeFileSync(loginsFile, `${logins.map((l) => `${l.role}\t${l.email}\t${l.password}\t${l.note}`).join('\n')}\nlab client\t${clientId}\t${keyFile}\n`, { mode: 0o600 });
  await auditLog.record({ action: 'demo-load', role: 'system', success: true, additionalData: { patients, users: logins.length, lab_client: clientId } });
  return { logins, patients, lab: { clientId, keyFile }, loginsFile };
}

/** What `npm start` prints of it. */
export function demoBanner(demo: Demo, base: string): string[] {
  const w = Math.max(...demo.logins.map((l) => l.email.length));
  return [
    `Demo data loaded (an empty embedded database; HMS_DEMO=0 turns this off): ${demo.patients} patients with their records.`,
    '  Log in as each role (POST /auth/login {"email","password"}; kept in ' + demo.loginsFile + '):',
    ...demo.logins.map((l) => `    ${l.role.padEnd(8)} ${l.email.padEnd(w)}  ${l.password}   ${l.note}`),
    `  e.g. TOKEN=$(curl -s -X POST ${base}/auth/login -H 'content-type: application/json' \\`,
    `         -d '{"email":"${demo.logins[1]!.email}","password":"${demo.logins[1]!.password}"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
    `       curl -s "${base}/fhir/Patient?_count=5" -H "authorization: Bearer $TOKEN"`,
    `  Lab client ${demo.lab.clientId} (SMART Backend Services, key pair in ${demo.lab.keyFile}):`,
    `    LAB=$(npx hms client-token --key ${demo.lab.keyFile})   # then POST ${base}/ingest/lab-results with it`,
  ];
}
