import t from 'tap';
import {
  ENCOUNTER_TEXT_EXTENSIONS, encounterFromRow, encounterToRow, HMS_VISIT_TYPE, V3_ACT_CODE, type Encounter,
} from '../../src/mappers/encounter-mapper.js';
import { officialExamples, withoutIdAndMeta } from '../helpers/fixtures.js';

const examples = officialExamples('Encounter');
const ctx = { userId: 'u-writer', now: '2030-01-01 12:34:56' };
const stored = (e: Encounter, extra: Record<string, unknown> = {}) => ({ ...encounterToRow(e, ctx), id: 'e1', _recorded_by: ctx.userId, _recorded_at: ctx.now, ...extra });
const base = (extra: Partial<Encounter> = {}): Encounter => ({
  resourceType: 'Encounter', status: 'in-progress', class: { system: V3_ACT_CODE, code: 'AMB' }, subject: { reference: 'Patient/p1' }, ...extra,
});

t.test('there are official Encounter examples to test with', async (t) => {
  t.ok(examples.length >= 3);
});

for (const { name, resource } of examples) {
  t.test(`round-trips the official example ${name} (resource -> row -> resource)`, async (t) => {
    const e = { ...(resource as Encounter), id: 'e1' };
    t.same(withoutIdAndMeta(encounterFromRow(stored(e), e)), withoutIdAndMeta(e));
  });
}

t.test('maps subject, participant, appointment, period start (UTC), type/class, reason and status', async (t) => {
  const row = encounterToRow(base({
    status: 'finished', participant: [{ individual: { reference: 'RelatedPerson/r' } }, { individual: { reference: 'Practitioner/d1' } }],
    appointment: [{ reference: 'Appointment/a1' }], period: { start: '2030-01-02T01:30:00+03:00', end: '2030-01-02T02:00:00+03:00' },
    reasonCode: [{ coding: [{ display: 'Heart valve replacement' }] }], class: { system: V3_ACT_CODE, code: 'EMER' },
  }), ctx);
  t.match(row, {
    patient_id: 'p1', doctor_id: 'd1', appointment_id: 'a1', visit_date: '2030-01-01', visit_time: '22:30:00', visit_type: 'emergency',
    chief_complaint: 'Heart valve replacement', status: 'completed',
  });
  t.equal(encounterToRow(base({ type: [{ coding: [{ system: HMS_VISIT_TYPE, code: 'surgery' }] }] }), ctx).visit_type, 'surgery');
  t.equal(encounterToRow(base({ status: 'planned' }), ctx).status, 'in_progress');
  t.equal(encounterToRow(base({ status: 'entered-in-error' }), ctx).status, 'cancelled');
});

t.test('defaults: no participant stores the writing user, no period the write time; both implied on read', async (t) => {
  const e = base();
  const row = encounterToRow(e, ctx);
  t.equal(row.doctor_id, 'u-writer');
  t.equal(row.visit_date, '2030-01-01');
  t.equal(row.visit_time, '12:34:56');
  t.same(encounterFromRow(stored(e), e), { ...e, id: 'e1' });
});

t.test('clinical texts live in one HMS extension each, valueString or valueMarkdown', async (t) => {
  const e = base({
    extension: [
      { url: ENCOUNTER_TEXT_EXTENSIONS.assessment!, valueMarkdown: '**stable**' },
      { url: ENCOUNTER_TEXT_EXTENSIONS.plan!, valueString: 'rest' },
    ],
  });
  const row = encounterToRow(e, ctx);
  t.equal(row.assessment, '**stable**');
  t.equal(row.plan, 'rest');
  t.equal(row.notes, null);
  const back = encounterFromRow(stored(e, { assessment: 'worse', notes: 'native note', plan: null }), e);
  t.same(back.extension, [
    { url: ENCOUNTER_TEXT_EXTENSIONS.assessment, valueMarkdown: 'worse' },
    { url: ENCOUNTER_TEXT_EXTENSIONS.notes, valueString: 'native note' },
  ]);
});

t.test('columns are authoritative: native changes show, keeping the offset and the client class', async (t) => {
  const e = base({ class: { system: V3_ACT_CODE, code: 'IMP' }, period: { start: '2030-01-02T10:00:00+02:00' } });
  const back = encounterFromRow(stored(e, { visit_time: '09:00:00', status: 'completed', visit_type: 'surgery' }), e);
  t.equal(back.period?.start, '2030-01-02T11:00:00+02:00');
  t.equal(back.status, 'finished');
  t.same(back.class, { system: V3_ACT_CODE, code: 'IMP' });
  t.same(back.type, [{ coding: [{ system: HMS_VISIT_TYPE, code: 'surgery', display: 'Surgery' }] }]);
  const emer = encounterFromRow(stored(e, { visit_type: 'emergency' }), e);
  t.equal(emer.class?.code, 'EMER');
});

t.test('reads a row inserted natively (no kept resource) as an Encounter', async (t) => {
  const back = encounterFromRow({
    id: 'n1', patient_id: 'p1', doctor_id: 'd1', appointment_id: null, visit_date: '2030-03-04', visit_time: '14:30:00',
    visit_type: 'follow_up', chief_complaint: 'Cough', history_present_illness: 'Two weeks', physical_examination: null,
    assessment: null, plan: 'Syrup', notes: null, discharge_instructions: null, follow_up_instructions: null, status: 'in_progress',
  });
  t.same(back, {
    resourceType: 'Encounter', id: 'n1', subject: { reference: 'Patient/p1' }, participant: [{ individual: { reference: 'Practitioner/d1' } }],
    period: { start: '2030-03-04T14:30:00Z' },
    type: [{ coding: [{ system: HMS_VISIT_TYPE, code: 'follow_up', display: 'Follow-up visit' }] }],
    class: { system: V3_ACT_CODE, code: 'AMB', display: 'ambulatory' },
    reasonCode: [{ text: 'Cough' }],
    extension: [
      { url: ENCOUNTER_TEXT_EXTENSIONS.history_present_illness, valueString: 'Two weeks' },
      { url: ENCOUNTER_TEXT_EXTENSIONS.plan, valueString: 'Syrup' },
    ],
    status: 'in-progress',
  });
  t.match(encounterToRow(back, {}), { visit_date: '2030-03-04', visit_time: '14:30:00', visit_type: 'follow_up', doctor_id: 'd1', status: 'in_progress' });
});
