/**
 * PATCH (https://hl7.org/fhir/R4/http.html#patch) over HTTP on the real database: JSON Patch and
 * FHIRPath Patch on a table-backed type (Patient) and a generic one (Immunization), written as an
 * update (new version, history, If-Match, audit, access), the refusals (400, 404, 410, 412, 415,
 * 422), concurrent patches, and PATCH entries of a transaction Bundle.
 */
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { testApp } from '../helpers/app.js';
import { buildWorld, NOTES_EXTENSION, type Principal } from '../helpers/access-world.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const JSON_PATCH = 'application/json-patch+json';
const CVX = 'http://hl7.org/fhir/sid/cvx';

/** A FHIRPath Patch operation from its parts ([name, value[x] key, value]). */
const op = (...parts: [string, string, unknown][]): J => ({ name: 'operation', part: parts.map(([name, key, value]) => ({ name, [key]: value })) });
const parameters = (...operations: J[]): J => ({ resourceType: 'Parameters', parameter: operations });

t.test('PATCH', async (t) => {
  const h = await testApp(t);
  const w = await buildWorld(h);
  const sys = `urn:hms:patch:${randomUUID()}`;
  const token = (name: string): string => w.principals.find((p: Principal) => p.name === name)!.token;

  const patch = (url: string, body: unknown, contentType = JSON_PATCH, headers: Record<string, string> = {}, as = h.token) =>
    h.fhir({ method: 'PATCH', url, payload: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': contentType, ...headers }, token: as });
  const read = async (url: string): Promise<J> => (await h.fhir({ method: 'GET', url })).json();
  const newPatient = async (): Promise<string> => String((await w.post('Patient', {
    resourceType: 'Patient', identifier: [{ system: sys, value: randomUUID() }], name: [{ family: 'Patchwork', given: ['Ada'] }], gender: 'female', birthDate: '1980-01-02',
  })).id);
  const newImmunization = async (patientId: string): Promise<string> => String((await w.post('Immunization', {
    resourceType: 'Immunization', status: 'completed', vaccineCode: { coding: [{ system: CVX, code: '140' }] },
    patient: { reference: `Patient/${patientId}` }, occurrenceDateTime: '2021-10-04T08:00:00Z',
  })).id);
  const outcome = (res: { statusCode: number; body: string; json: () => J }, status: number, t: Test, expression?: string) => {
    t.equal(res.statusCode, status, res.body.slice(0, 400));
    const body = res.json();
    t.equal(body.resourceType, 'OperationOutcome');
    if (expression) t.same(body.issue[0].expression, [expression]);
  };

  t.test('JSON Patch on a Patient: a new version, in the history, audited as an update', async (t) => {
    const id = await newPatient();
    const res = await patch(`/fhir/Patient/${id}`, [
      { op: 'test', path: '/name/0/family', value: 'Patchwork' },
      { op: 'replace', path: '/name/0/family', value: 'Lovelace' },
      { op: 'add', path: '/identifier/-', value: { system: sys, value: 'second' } },
      { op: 'add', path: '/telecom', value: [{ system: 'phone', value: '555-0100' }] },
    ]);
    t.equal(res.statusCode, 200, res.body.slice(0, 400));
    const body = res.json();
    t.equal(body.meta.versionId, '2');
    t.equal(res.headers.etag, 'W/"2"');
    t.match(res.headers.location, new RegExp(`/fhir/Patient/${id}/_history/2$`));
    t.equal(body.name[0].family, 'Lovelace');
    const stored = await read(`/fhir/Patient/${id}`);
    t.equal(stored.name[0].family, 'Lovelace', 'the column-backed name changed');
    t.same(stored.identifier.map((i: J) => i.value).slice(1), ['second']);
    t.same(stored.telecom, [{ system: 'phone', value: '555-0100' }], 'the kept elements changed');
    t.equal((await h.db('patients').where({ id }).first('last_name')).last_name, 'Lovelace', 'the column itself holds the new name');
    const history = await read(`/fhir/Patient/${id}/_history`);
    t.same(history.entry.map((e: J) => e.resource.meta.versionId), ['2', '1']);
    t.equal(history.entry[1].resource.name[0].family, 'Patchwork', 'version 1 is as it was');
    const audit = await h.db('security_logs').where({ resource_type: 'Patient', resource_id: id, action: 'update' }).select('patient_id', 'success', 'user_id');
    t.equal(audit.length, 1, 'one update row');
    t.equal(audit[0].patient_id, id);
    t.equal(audit[0].user_id, h.userId);
  });

  t.test('FHIRPath Patch on a Patient (a Parameters as application/fhir+json)', async (t) => {
    const id = await newPatient();
    const res = await patch(`/fhir/Patient/${id}`, parameters(
      op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.birthDate'], ['value', 'valueDate', '1981-03-04']),
      op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient.name[0]'], ['name', 'valueString', 'given'], ['value', 'valueString', 'Augusta']),
      op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'deceased'], ['value', 'valueBoolean', false]),
    ), 'application/fhir+json');
    t.equal(res.statusCode, 200, res.body.slice(0, 400));
    const stored = await read(`/fhir/Patient/${id}`);
    t.equal(stored.meta.versionId, '2');
    t.equal(stored.birthDate, '1981-03-04');
    t.same(stored.name[0].given, ['Ada', 'Augusta']);
    t.equal(stored.deceasedBoolean, false);
    const plain = await patch(`/fhir/Patient/${id}`, parameters(op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.deceased'])), 'application/json', { prefer: 'return=minimal' });
    t.equal(plain.statusCode, 200, 'application/json works too');
    t.equal(plain.body, '', 'Prefer: return=minimal, as for an update');
    t.equal(plain.headers.etag, 'W/"3"');
    t.notOk('deceasedBoolean' in (await read(`/fhir/Patient/${id}`)));
  });

  t.test('both formats on a generic type (Immunization)', async (t) => {
    const id = await newImmunization(w.A);
    const url = `/fhir/Immunization/${id}`;
    const one = await patch(url, [{ op: 'add', path: '/lotNumber', value: 'LOT-1' }, { op: 'replace', path: '/status', value: 'entered-in-error' }]);
    t.equal(one.statusCode, 200, one.body.slice(0, 400));
    const two = await patch(url, parameters(
      op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Immunization'], ['name', 'valueString', 'note'], ['value', 'valueAnnotation', { text: 'given late' }]),
      op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Immunization.lotNumber'], ['value', 'valueString', 'LOT-2']),
    ), 'application/fhir+json');
    t.equal(two.statusCode, 200, two.body.slice(0, 400));
    const stored = await read(url);
    t.equal(stored.meta.versionId, '3');
    t.equal(stored.lotNumber, 'LOT-2');
    t.equal(stored.status, 'entered-in-error');
    t.same(stored.note, [{ text: 'given late' }]);
    const search = await read(`/fhir/Immunization?_id=${id}&status=entered-in-error`);
    t.equal(search.entry?.length, 1, 'the search index follows the patch');
    t.equal((await read(`${url}/_history`)).entry.length, 3);
  });

  t.test('If-Match: the current version applies, a stale one is 412 and writes nothing', async (t) => {
    const id = await newPatient();
    const url = `/fhir/Patient/${id}`;
    const ops = [{ op: 'replace', path: '/gender', value: 'other' }];
    outcome(await patch(url, ops, JSON_PATCH, { 'if-match': 'W/"7"' }), 412, t);
    t.equal((await read(url)).meta.versionId, '1');
    const ok = await patch(url, ops, JSON_PATCH, { 'if-match': 'W/"1"' });
    t.equal(ok.statusCode, 200, ok.body.slice(0, 300));
    outcome(await patch(url, [{ op: 'replace', path: '/gender', value: 'male' }], JSON_PATCH, { 'if-match': 'W/"1"' }), 412, t);
    t.equal((await read(url)).gender, 'other');
  });

  t.test('a patch that does not apply is 422 naming the operation, and writes nothing', async (t) => {
    const id = await newPatient();
    const url = `/fhir/Patient/${id}`;
    outcome(await patch(url, [{ op: 'replace', path: '/gender', value: 'male' }, { op: 'test', path: '/name/0/family', value: 'Someone else' }]), 422, t, '/1');
    outcome(await patch(url, [{ op: 'remove', path: '/photo' }]), 422, t, '/0');
    outcome(await patch(url, [{ op: 'add', path: '/contact/0/name', value: { family: 'x' } }]), 422, t, '/0');
    outcome(await patch(url, parameters(op(['type', 'valueCode', 'replace'], ['path', 'valueString', 'Patient.photo'], ['value', 'valueAttachment', { url: 'x' }])), 'application/fhir+json'), 422, t, 'Parameters.parameter[0]');
    outcome(await patch(url, parameters(
      op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Patient.telecom']),
      op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Patient'], ['name', 'valueString', 'birthDate'], ['value', 'valueDate', '1990-01-01']),
    ), 'application/fhir+json'), 422, t, 'Parameters.parameter[1]');
    // the result must be a valid Patient, with its own id and type
    outcome(await patch(url, [{ op: 'replace', path: '/gender', value: 'banana' }]), 422, t);
    outcome(await patch(url, [{ op: 'add', path: '/spaceship', value: true }]), 422, t);
    outcome(await patch(url, [{ op: 'replace', path: '/id', value: randomUUID() }]), 422, t, 'Patient.id');
    outcome(await patch(url, [{ op: 'remove', path: '/id' }]), 422, t, 'Patient.id');
    outcome(await patch(url, [{ op: 'replace', path: '/resourceType', value: 'Practitioner' }]), 422, t, 'Patient.resourceType');
    outcome(await patch(url, [{ op: 'remove', path: '' }]), 422, t);
    const failed = await patch(url, [{ op: 'test', path: '/name/0/family', value: 'Someone else' }]);
    t.notMatch(failed.body, /Patchwork|1980-01-02/, 'the refusal does not echo the stored resource');
    const stored = await read(url);
    t.equal(stored.meta.versionId, '1', 'no version was written');
    t.equal(stored.gender, 'female');
  });

  t.test('a malformed patch is 400; a body of another kind is 415', async (t) => {
    const id = await newPatient();
    const url = `/fhir/Patient/${id}`;
    outcome(await patch(url, { op: 'replace', path: '/gender', value: 'male' }), 400, t);
    outcome(await patch(url, [{ op: 'frobnicate', path: '/gender' }]), 400, t, '/0');
    outcome(await patch(url, [{ op: 'replace', path: '/gender', value: 'male' }, { op: 'add', path: '/x' }]), 400, t, '/1');
    outcome(await patch(url, [{ op: 'move', path: '/gender' }]), 400, t, '/0');
    outcome(await patch(url, [{ op: 'replace', path: 'gender', value: 'male' }]), 400, t, '/0');
    outcome(await patch(url, [{ op: '_get', path: '/gender', value: 1 }]), 400, t, '/0');
    outcome(await patch(url, '[{"op":"replace",'), 400, t);
    outcome(await patch(url, ''), 400, t);
    outcome(await patch(url, { resourceType: 'Parameters' }, 'application/fhir+json'), 400, t);
    outcome(await patch(url, { resourceType: 'Patient', id, gender: 'male' }, 'application/fhir+json'), 400, t);
    outcome(await patch(url, parameters(op(['type', 'valueCode', 'upsert'], ['path', 'valueString', 'Patient'])), 'application/fhir+json'), 400, t, 'Parameters.parameter[0]');
    outcome(await patch(url, [{ op: 'replace', path: '/gender', value: 'male' }], 'application/fhir+json'), 415, t);
    outcome(await patch(url, [{ op: 'replace', path: '/gender', value: 'male' }], 'text/plain'), 415, t);
    outcome(await patch(url, '<Parameters/>', 'application/fhir+xml'), 415, t);
    // prototype pollution stays banned, in a path and as a key
    outcome(await patch(url, [{ op: 'add', path: '/__proto__/polluted', value: 'yes' }]), 400, t);
    outcome(await patch(url, '[{"op":"add","path":"/extension","value":{"__proto__":{"polluted":"yes"}}}]'), 400, t);
    t.equal(({} as J).polluted, undefined, 'Object.prototype is untouched');
    t.equal((await read(url)).meta.versionId, '1', 'nothing was written');
  });

  t.test('an unknown id is 404, a deleted one 410, a type without patch 405', async (t) => {
    outcome(await patch(`/fhir/Patient/${randomUUID()}`, [{ op: 'replace', path: '/gender', value: 'male' }]), 404, t);
    outcome(await patch(`/fhir/Immunization/${randomUUID()}`, parameters(op(['type', 'valueCode', 'delete'], ['path', 'valueString', 'Immunization.note'])), 'application/fhir+json'), 404, t);
    const imm = await newImmunization(w.A);
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Immunization/${imm}` })).statusCode, 204);
    outcome(await patch(`/fhir/Immunization/${imm}`, [{ op: 'add', path: '/lotNumber', value: 'x' }]), 410, t);
    const pat = await newPatient();
    t.equal((await h.fhir({ method: 'DELETE', url: `/fhir/Patient/${pat}` })).statusCode, 204);
    outcome(await patch(`/fhir/Patient/${pat}`, [{ op: 'add', path: '/gender', value: 'male' }]), 410, t);
    outcome(await patch(`/fhir/AuditEvent/${w.of.AuditEvent!.A}`, [{ op: 'remove', path: '/outcome' }]), 405, t);
  });

  t.test('access: refused exactly as the update would be', async (t) => {
    const ops = [{ op: 'replace', path: '/name/0/family', value: 'Changed' }];
    const url = `/fhir/Patient/${w.A}`;
    const before = (await read(url)).meta.versionId;
    // a nurse may not update a Patient: the PUT's answer and the PATCH's are both 403
    const current = await read(url);
    const put = await h.fhir({ method: 'PUT', url, payload: current, token: token('assigned nurse') });
    t.equal(put.statusCode, 403);
    outcome(await patch(url, ops, JSON_PATCH, {}, token('assigned nurse')), 403, t);
    outcome(await patch(url, ops, JSON_PATCH, {}, token('finance')), 403, t);
    outcome(await patch(url, ops, JSON_PATCH, {}, token('patient A')), 403, t);
    // out of reach reads as a missing id: the same answer, word for word
    const unassigned = await patch(url, ops, JSON_PATCH, {}, token('unassigned doctor'));
    const ghost = randomUUID();
    const missing = await patch(`/fhir/Patient/${ghost}`, ops, JSON_PATCH, {}, token('unassigned doctor'));
    outcome(unassigned, 404, t);
    t.equal(unassigned.body, missing.body.split(ghost).join(w.A), 'no different from an unknown id');
    t.equal((await read(url)).meta.versionId, before, 'nothing was written');
    const assigned = await patch(url, [{ op: 'add', path: '/name/0/given/-', value: 'Patched' }], JSON_PATCH, {}, token('assigned doctor'));
    t.equal(assigned.statusCode, 200, assigned.body.slice(0, 300));
    // a nurse may change an Encounter's notes and nothing else, by PATCH as by PUT
    const enc = `/fhir/Encounter/${w.of.Encounter!.A}`;
    const notes = (await read(enc)).extension.findIndex((e: J) => e.url === NOTES_EXTENSION);
    const noted = await patch(enc, [{ op: 'replace', path: `/extension/${notes}/valueString`, value: 'patched notes' }], JSON_PATCH, {}, token('assigned nurse'));
    t.equal(noted.statusCode, 200, noted.body.slice(0, 300));
    outcome(await patch(enc, [{ op: 'replace', path: '/status', value: 'cancelled' }], JSON_PATCH, {}, token('assigned nurse')), 403, t);
    outcome(await patch(enc, [{ op: 'replace', path: '/status', value: 'cancelled' }], JSON_PATCH, {}, token('unassigned nurse')), 404, t);
  });

  t.test('concurrent patches of one resource both apply (the row is locked, none is lost)', async (t) => {
    const id = await newPatient();
    const url = `/fhir/Patient/${id}`;
    const results = await Promise.all(['one', 'two', 'three'].map((value) => patch(url, [{ op: 'add', path: '/identifier/-', value: { system: sys, value } }])));
    t.same(results.map((r) => r.statusCode), [200, 200, 200], results.map((r) => r.body.slice(0, 200)).join(' | '));
    t.same(results.map((r) => r.json().meta.versionId).sort(), ['2', '3', '4']);
    const stored = await read(url);
    t.same(stored.identifier.slice(1).map((i: J) => i.value).sort(), ['one', 'three', 'two']);
    t.equal(stored.meta.versionId, '4');
  });

  t.test('PATCH entries of a transaction Bundle: a Binary with a JSON Patch, and a Parameters', async (t) => {
    const id = await newPatient();
    const imm = await newImmunization(w.A);
    const jsonPatch = [{ op: 'replace', path: '/gender', value: 'male' }];
    const res = await h.fhir({
      method: 'POST', url: '/fhir', payload: {
        resourceType: 'Bundle', type: 'transaction', entry: [
          { resource: { resourceType: 'Binary', contentType: JSON_PATCH, data: Buffer.from(JSON.stringify(jsonPatch)).toString('base64') }, request: { method: 'PATCH', url: `Patient/${id}`, ifMatch: 'W/"1"' } },
          { resource: parameters(op(['type', 'valueCode', 'add'], ['path', 'valueString', 'Immunization'], ['name', 'valueString', 'lotNumber'], ['value', 'valueString', 'TX-LOT'])), request: { method: 'PATCH', url: `Immunization/${imm}` } },
        ],
      },
    });
    t.equal(res.statusCode, 200, res.body.slice(0, 500));
    t.same(res.json().entry.map((e: J) => e.response.status), ['200 OK', '200 OK']);
    t.equal((await read(`/fhir/Patient/${id}`)).gender, 'male');
    t.equal((await read(`/fhir/Immunization/${imm}`)).lotNumber, 'TX-LOT');
    // one failing patch undoes the whole transaction
    const failed = await h.fhir({
      method: 'POST', url: '/fhir', payload: {
        resourceType: 'Bundle', type: 'transaction', entry: [
          { resource: { resourceType: 'Binary', contentType: JSON_PATCH, data: Buffer.from(JSON.stringify([{ op: 'replace', path: '/gender', value: 'female' }])).toString('base64') }, request: { method: 'PATCH', url: `Patient/${id}` } },
          { resource: { resourceType: 'Binary', contentType: JSON_PATCH, data: Buffer.from(JSON.stringify([{ op: 'test', path: '/lotNumber', value: 'other' }])).toString('base64') }, request: { method: 'PATCH', url: `Immunization/${imm}` } },
        ],
      },
    });
    t.equal(failed.statusCode, 422, failed.body.slice(0, 500));
    const after = await read(`/fhir/Patient/${id}`);
    t.equal(after.gender, 'male', 'the first entry was rolled back');
    t.equal(after.meta.versionId, '2');
  });
});
