import t from 'tap';
import {
  ACTION_CODES, AUDIT_ACTION_SYSTEM, AUDIT_ROLE_SYSTEM, auditEventFromRow, BREAK_GLASS_PURPOSE, CLIENT_ID_SYSTEM, DICOM_SYSTEM, outcomeOf,
  REQUEST_ID_DETAIL, USER_AGENT_EXTENSION, USER_ID_SYSTEM,
} from '../../src/mappers/audit-event-mapper.js';

const row = (extra: Record<string, unknown> = {}) => ({
  id: 'l1', user_id: 'u1', action: 'read', resource_type: 'Patient', resource_id: 'p1', ip_address: '10.0.0.1', user_agent: 'curl/8',
  timestamp: '2024-03-01 10:00:00', success: 1, failure_reason: null, additional_data: '{"method":"GET","route":"/fhir/Patient/:id","version":2}',
  _user_role: 'doctor', ...extra,
});

t.test('a REST read by a doctor', async (t) => {
  t.same(auditEventFromRow(row()), {
    resourceType: 'AuditEvent', id: 'l1',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' },
    subtype: [{ system: AUDIT_ACTION_SYSTEM, code: 'read' }],
    action: 'R', recorded: '2024-03-01T10:00:00Z', outcome: '0',
    agent: [{ requestor: true, who: { reference: 'Practitioner/u1' }, extension: [{ url: USER_AGENT_EXTENSION, valueString: 'curl/8' }], network: { address: '10.0.0.1', type: '2' } }],
    source: { observer: { display: 'HMS FHIR server' }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '3', display: 'Web Server' }] },
    entity: [{ what: { reference: 'Patient/p1' }, detail: [{ type: 'method', valueString: 'GET' }, { type: 'route', valueString: '/fhir/Patient/:id' }, { type: 'version', valueString: '2' }] }],
  });
});

t.test('a failed login of a non-clinician; a search; an anonymous refusal', async (t) => {
  const login = auditEventFromRow(row({ action: 'login', resource_type: null, resource_id: null, success: 0, failure_reason: 'wrong password', _user_role: 'finance', additional_data: null }));
  t.same(login.type, { system: DICOM_SYSTEM, code: '110114', display: 'User Authentication' });
  t.equal(login.action, 'E');
  t.equal(login.outcome, '4');
  t.equal(login.outcomeDesc, 'wrong password');
  t.same(login.agent[0]!.who, { identifier: { system: USER_ID_SYSTEM, value: 'u1' }, display: 'HMS user (finance)' });
  t.notOk(login.entity);
  const search = auditEventFromRow(row({ action: 'search', resource_id: null, additional_data: { ids: ['a', 'b'], route: null } }));
  t.same(search.entity, [{ what: { type: 'Patient' }, detail: [{ type: 'ids', valueString: '["a","b"]' }] }]);
  const anon = auditEventFromRow(row({ user_id: null, _user_role: null, action: 'refused', success: 0, failure_reason: '500 exception', user_agent: null, ip_address: null }));
  t.same(anon.agent, [{ requestor: true }]);
  t.equal(anon.outcome, '8');
});

t.test('action letters and outcomes', async (t) => {
  t.same(['create', 'update', 'delete', 'vread', 'history'].map((a) => ACTION_CODES[a]), ['C', 'U', 'D', 'R', 'R']);
  t.equal(outcomeOf(true, null), '0');
  t.equal(outcomeOf(0, '403 forbidden'), '4');
  t.equal(outcomeOf(false, '503 transient'), '8');
});

t.test('a system client is an identifier agent with its role; the request id is a detail', async (t) => {
  const event = auditEventFromRow(row({
    user_id: null, _user_role: null, client_id: 'c1', role: 'system', resource_type: 'Observation', resource_id: 'o1', patient_id: 'p1',
    request_id: 'req-7', additional_data: null, break_glass: 0,
  }));
  t.same(event.agent[0]!.who, { identifier: { system: CLIENT_ID_SYSTEM, value: 'c1' }, display: 'HMS client' });
  t.same(event.agent[0]!.role, [{ coding: [{ system: AUDIT_ROLE_SYSTEM, code: 'system' }], text: 'system' }]);
  t.same(event.entity, [
    { what: { reference: 'Observation/o1' }, detail: [{ type: REQUEST_ID_DETAIL, valueString: 'req-7' }] },
    {
      what: { reference: 'Patient/p1' },
      type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
      role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
    },
  ], 'the patient whose data it was is an entity of its own');
  t.notOk(event.purposeOfEvent);
  t.notOk(event.agent[0]!.purposeOfUse);
});

t.test('a break-glass access states emergency treatment as the purpose', async (t) => {
  const event = auditEventFromRow(row({ role: 'nurse', _user_role: 'nurse', break_glass: 1, patient_id: 'p1' }));
  t.same(event.purposeOfEvent, [BREAK_GLASS_PURPOSE]);
  t.same(event.agent[0]!.purposeOfUse, [BREAK_GLASS_PURPOSE]);
  t.match(BREAK_GLASS_PURPOSE, { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' }] });
  t.equal(event.entity!.length, 1, 'the resource is the patient: no second entity');
  t.same(event.agent[0]!.who, { reference: 'Practitioner/u1' });
});

t.test("the agent of a user whose row is gone follows the role the row recorded", async (t) => {
  t.same(auditEventFromRow(row({ _user_role: null, role: 'doctor' })).agent[0]!.who, { reference: 'Practitioner/u1' });
  t.same(auditEventFromRow(row({ _user_role: null, role: 'finance' })).agent[0]!.who, { identifier: { system: USER_ID_SYSTEM, value: 'u1' }, display: 'HMS user (finance)' });
  t.same(auditEventFromRow(row({ _user_role: null, role: null })).agent[0]!.who, { identifier: { system: USER_ID_SYSTEM, value: 'u1' }, display: 'HMS user' });
});
