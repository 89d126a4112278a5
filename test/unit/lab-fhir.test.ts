import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { validateResource } from '../../src/fhir/validate.js';
import { parseLabMessage } from '../../src/ingest/hl7.js';
import { FILLER_ORDER_SYSTEM, labReportToFhir, MESSAGE_SYSTEM, PLACER_ORDER_SYSTEM, type LabFhir, type LabObservation } from '../../src/ingest/lab-fhir.js';
import type { LabMessage } from '../../src/ingest/lab-message.js';
import { columnsFromResource } from '../../src/mappers/column-map.js';
import { labSourceFields, V3_INTERPRETATION } from '../../src/mappers/lab-result-mapper.js';
import type { Observation } from '../../src/mappers/observation-mapper.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'hl7v2');
const names = readdirSync(dir).filter((f) => f.endsWith('.hl7'));
const parse = (name: string): LabMessage => parseLabMessage(readFileSync(join(dir, name)));
const refs = { patient: 'Patient/p1', performer: 'Practitioner/d1' };
const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';
/** The lab_results columns HMS's write path would store for an Observation. */
const columns = (o: Observation) => columnsFromResource(labSourceFields, o, { userId: 'u1', now: '2030-01-01 00:00:00' });
const fhir = (name: string, report = 0): LabFhir => { const m = parse(name); return labReportToFhir(m.reports[report]!, m, refs); };

t.test('every Observation and DiagnosticReport made from the nine fixtures passes HMS validation', async (t) => {
  let observations = 0;
  let reports = 0;
  for (const name of names) {
    const m = parse(name);
    for (const r of m.reports) {
      for (const variant of [refs, { patient: 'Patient/p1' }]) {
        const out = labReportToFhir(r, m, variant);
        for (const o of out.observations) {
          t.doesNotThrow(() => validateResource('Observation', o), `${name}: Observation ${o.identifier?.[0]?.value}`);
          observations++;
        }
        t.doesNotThrow(() => validateResource('DiagnosticReport', out.report), `${name}: DiagnosticReport`);
        t.equal(out.report.result, undefined, 'results are left to the caller');
        reports++;
      }
    }
  }
  t.equal(observations, 2 * 61, 'observations of all fixtures');
  t.equal(reports, 2 * 11);
});

t.test('LRI CBC: quantities with UCUM, ranges, v3 interpretation, issued instant, identifiers', async (t) => {
  const { observations, report } = fhir('LRI_2.0-NG_CBC_Typ_Message.hl7');
  t.equal(observations.length, 28);
  const rbc = observations[0]!;
  t.same(rbc, {
    resourceType: 'Observation',
    identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'FILL', display: 'Filler Identifier' }] }, system: FILLER_ORDER_SYSTEM, value: 'NIST Lab Filler/R-991133/1' }],
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
    code: { coding: [{ system: LOINC, code: '26453-1', display: 'Erythrocytes [#/volume] in Blood' }], text: 'Erythrocytes [#/volume] in Blood' },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2011-01-03T14:34:28-08:00',
    issued: '2011-01-04T17:00:28-08:00',
    performer: [{ reference: 'Practitioner/d1' }],
    valueQuantity: { value: 4.41, unit: '10*6/uL', system: UCUM, code: '10*6/uL' },
    interpretation: [{ coding: [{ system: V3_INTERPRETATION, code: 'N', display: 'Normal' }], text: 'Normal' }],
    referenceRange: [{ low: { value: 4.3, unit: '10*6/uL', system: UCUM, code: '10*6/uL' }, high: { value: 6.2, unit: '10*6/uL', system: UCUM, code: '10*6/uL' }, text: '4.3 to 6.2' }],
  });
  t.same(observations[1]!.interpretation?.[0]?.coding?.[0]?.code, 'L');
  t.same(observations[3]!.interpretation?.[0]?.coding?.[0]?.code, 'HH');
  t.same(observations[19]!.valueCodeableConcept, { coding: [{ system: 'http://snomed.info/sct', code: '260348001', display: 'Present ++ out of ++++' }], text: 'Moderate Anisocytosis' });
  t.same(observations[19]!.interpretation, [{ coding: [{ system: V3_INTERPRETATION, code: 'A', display: 'Abnormal' }], text: 'Abnormal' }]);
  t.equal(observations[25]!.valueString, 'Many spherocytes present.');
  t.same(new Set(observations.map((o) => o.identifier?.[0]?.value)).size, 28, 'one identifier each');
  t.same(report, {
    resourceType: 'DiagnosticReport',
    identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'FILL', display: 'Filler Identifier' }] }, system: FILLER_ORDER_SYSTEM, value: 'NIST Lab Filler/R-991133' }],
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB', display: 'Laboratory' }] }],
    code: { coding: [{ system: LOINC, code: '57021-8', display: 'CBC W Auto Differential panel in Blood' }, { system: 'urn:hl7v2:99USI', code: '4456544', display: 'CBC' }], text: 'CBC W Auto Differential panel in Blood' },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2011-01-03T14:34:28-08:00',
    issued: '2011-01-04T17:00:28-08:00',
    performer: [{ reference: 'Practitioner/d1' }],
  });
});

t.test('LRI CBC: the values land in the right lab_results columns', async (t) => {
  const { observations } = fhir('LRI_2.0-NG_CBC_Typ_Message.hl7');
  const rbc = columns(observations[0]!);
  t.equal(rbc.l_test_code, '26453-1');
  t.equal(rbc.l_test_name, 'Erythrocytes [#/volume] in Blood');
  t.equal(rbc.l_test_category, 'blood');
  t.equal(rbc.l_result_value, '4.41');
  t.equal(rbc.l_result_unit, '10*6/uL');
  t.equal(rbc.l_reference_range, '4.3 to 6.2');
  t.equal(rbc.l_status, 'completed');
  t.equal(rbc.l_abnormal_flag, 'normal');
  t.equal(rbc.l_collection_date, '2011-01-03');
  t.equal(rbc.l_result_date, '2011-01-04', 'the date of issued');
  t.equal(rbc.l_ordered_by, 'd1');
  t.equal(rbc.l_interpretation, 'Normal');
  t.equal(columns(observations[1]!).l_abnormal_flag, 'low');
  t.equal(columns(observations[3]!).l_abnormal_flag, 'critical', 'HH');
  t.equal(columns(observations[13]!).l_abnormal_flag, 'critical', 'HH');
  t.equal(columns(observations[19]!).l_result_value, 'Moderate Anisocytosis');
  t.equal(columns(observations[25]!).l_result_value, 'Many spherocytes present.');
});

t.test('LAB-ORU-1: pending rows, non-UCUM units, a report without OBR-25', async (t) => {
  const cbc = fhir('LAB-ORU-1.hl7', 0);
  const pending = cbc.observations[0]!;
  t.equal(pending.status, 'preliminary', 'OBX-11 I');
  t.equal(pending.valueQuantity, undefined);
  t.same(pending.dataAbsentReason, { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'temp-unknown', display: 'Temporarily Unknown' }], text: 'Temporarily Unknown' });
  t.equal(pending.effectiveDateTime, undefined);
  t.equal(columns(pending).l_status, 'in_progress');
  t.equal(columns(pending).l_result_value, null);
  t.same(cbc.observations[1]!.valueQuantity, { value: 4.06, unit: 'tera.l-1' }, 'not UCUM: unit only');
  t.equal(cbc.observations[1]!.status, 'preliminary', 'OBX-11 P');
  t.equal(cbc.observations[4]!.status, 'final');
  t.same(cbc.observations[3]!.valueQuantity, { value: 40.1, unit: '%', system: UCUM, code: '%' });
  t.equal(cbc.report.status, 'final');
  t.equal(cbc.report.issued, undefined);
  t.equal(cbc.observations[0]!.identifier?.[0]?.value, 'SomeSystem/82503246/1', 'no filler namespace: the sending application');
  const diff = fhir('LAB-ORU-1.hl7', 1);
  t.equal(diff.report.status, 'final', 'OBR-25 empty: final');
  t.equal(diff.observations.length, 5);
});

t.test('ORU-R01-RMGEAD: SN quantity, 70_105 range, H flag, codes without systems', async (t) => {
  const { observations, report } = fhir('ORU-R01-RMGEAD.hl7');
  t.equal(observations.length, 1);
  const g = observations[0]!;
  t.same(g.code, { coding: [{ code: '1554-5', display: 'GLUCOSE' }] });
  t.same(g.valueQuantity, { value: 182, unit: 'mg/dl' });
  t.same(g.referenceRange, [{ low: { value: 70, unit: 'mg/dl' }, high: { value: 105, unit: 'mg/dl' }, text: '70_105' }]);
  t.same(g.interpretation, [{ coding: [{ system: V3_INTERPRETATION, code: 'H', display: 'High' }], text: 'High' }]);
  t.equal(g.effectiveDateTime, '2002-02-15T07:30:00+06:00');
  t.equal(columns(g).l_abnormal_flag, 'high');
  t.equal(columns(g).l_test_code, '1554-5');
  t.same(report.code, { coding: [{ code: '15545', display: 'GLUCOSE' }] });
  t.equal(report.identifier?.[0]?.value, 'GHH LAB/1045813');
});

t.test('ORU-R01-01: coded result with notes, RP pointer, a second NM repetition, report notes', async (t) => {
  const { observations, report } = fhir('ORU-R01-01.hl7');
  t.equal(observations.length, 3);
  const [culture, pointer, count] = observations as [LabObservation, LabObservation, LabObservation];
  t.equal(culture.status, 'preliminary');
  t.same(culture.valueCodeableConcept?.coding, [{ system: 'http://snomed.info/sct', code: '27268008', display: 'Salmonella' }]);
  t.same(culture.note, [{ text: 'Submission of serum\nNo Antibodies Detected' }]);
  t.equal(culture.effectiveDateTime, '2012-03-01');
  t.equal(culture.issued, undefined, 'OBR-22 has no seconds: no instant');
  t.equal(columns(culture).l_lab_comments, 'Submission of serum\nNo Antibodies Detected');
  t.equal(pointer.valueString, 'https://testurl.com');
  t.equal(pointer.status, 'registered', 'OBX-11 O: order detail only');
  t.equal(pointer.identifier?.[0]?.value, 'IA PHIMS Stage/986/1.1#2');
  t.same(count.valueQuantity, { value: 27 });
  t.same(count.note, [{ text: 'Further values reported (OBX-5 repetitions): 25' }]);
  t.match(report.conclusion, /O157:H7 & other STECs/);
  t.equal(report.status, 'final');
});

t.test('text reports without OBX-3: the lines are one observation coded with OBR-4', async (t) => {
  const short = fhir('ORU-multiline-short.hl7');
  t.equal(short.observations.length, 1);
  t.same(short.observations[0]!.code, { coding: [{ code: '1487', display: 'ECHO CARDIOGRAM COMPLETE' }] });
  t.equal(short.observations[0]!.valueString, '[PII] Emergency Department\nED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:');
  t.equal(short.observations[0]!.effectiveDateTime, '2020-08-02');
  const mixed = fhir('ORU-multiline-short-mixed.hl7');
  t.equal(mixed.observations.length, 2);
  t.same(mixed.observations[0]!.code, { coding: [{ code: '12345' }] });
  t.equal(mixed.observations[0]!.dataAbsentReason?.coding?.[0]?.code, 'unknown', 'final without a value');
  t.equal(mixed.observations[1]!.identifier?.[0]?.value, 'LAB/FON_0d70c6c8/2');
});

t.test('Simulated Hospital: notes, one-sided ranges, text results', async (t) => {
  const lipid = fhir('hl7.message.2.ORU_R01.hl7');
  t.equal(lipid.observations.length, 4);
  const chol = lipid.observations[0]!;
  t.same(chol.valueQuantity, { value: 1.36, unit: 'mmol/L', system: UCUM, code: 'mmol/L' });
  t.same(chol.referenceRange, [{ high: { value: 4.5, unit: 'mmol/L', system: UCUM, code: 'mmol/L' }, text: '[ < 4.5]' }]);
  t.same(chol.note, [{ text: 'Memory stair anguish' }]);
  t.same(chol.code, { coding: [{ system: 'urn:hl7v2:WinPath', code: 'tt-0001-01', display: 'Cholesterol' }] });
  t.equal(chol.effectiveDateTime, '2020-10-21');
  t.equal(columns(chol).l_reference_range, '[ < 4.5]');
  t.equal(columns(chol).l_abnormal_flag, 'normal', 'no flag');
  const mri = fhir('hl7.message.4.ORU_R01.hl7');
  t.same(mri.observations.map((o) => o.valueString), ['MANKL value', 'MRI Ankle Lt value']);
});

t.test('statuses, comparators, flags and identifiers of made-up rows', async (t) => {
  const msg = (obx: string[], obr25 = 'F', obr3 = 'F1^LAB') => parseLabMessage([
    'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000+0100||ORU^R01|C1|P|2.5.1',
    'PID|1||A1^^^H^MR||Doe^Jane||19800101|F',
    `OBR|1|P1^HMS|${obr3}|24317-0^Hemogram^LN|||20240101100000+0100|||||||||||||||20240101113000+0100|||${obr25}`,
    ...obx,
  ].join('\r'));
  const one = (obx: string[], obr25?: string, obr3?: string) => { const m = msg(obx, obr25, obr3); return labReportToFhir(m.reports[0]!, m, { patient: 'Patient/p1' }); };
  const status = (s: string, obr25 = 'F') => one([`OBX|1|NM|718-7^Hb^LN||13|g/dL|||||${s}`], obr25).observations[0]!.status;
  t.same(['F', 'C', 'P', 'I', 'R', 'X', 'D', 'W', 'O'].map((s) => status(s)), ['final', 'corrected', 'preliminary', 'preliminary', 'preliminary', 'cancelled', 'entered-in-error', 'entered-in-error', 'registered']);
  t.equal(status('', 'P'), 'preliminary', 'no OBX-11: the OBR status');
  t.equal(status('', 'C'), 'corrected');
  t.equal(status('', ''), 'final');
  t.same(['F', 'C', 'P', 'X', 'Q', ''].map((s) => one(['OBX|1|NM|718-7^Hb^LN||13|g/dL|||||F'], s).report.status), ['final', 'corrected', 'preliminary', 'cancelled', 'final', 'final']);
  const cancelled = one(['OBX|1|NM|718-7^Hb^LN|||g/dL|||||X']).observations[0]!;
  t.equal(cancelled.dataAbsentReason?.coding?.[0]?.code, 'not-performed');
  const lt = one(['OBX|1|SN|718-7^Hb^LN||<^5|mg/dL^^UCUM|<10|L~A~Q||||F']).observations[0]!;
  t.same(lt.valueQuantity, { value: 5, comparator: '<', unit: 'mg/dL', system: UCUM, code: 'mg/dL' });
  t.same(lt.referenceRange, [{ high: { value: 10, unit: 'mg/dL', system: UCUM, code: 'mg/dL' }, text: '<10' }]);
  t.same(lt.interpretation?.map((i) => i.coding?.[0]?.code ?? i.text), ['L', 'A', 'Q'], 'an unknown flag as text');
  t.doesNotThrow(() => validateResource('Observation', lt));
  t.equal(columns(lt).l_abnormal_flag, 'low');
  const crit = one(['OBX|1|NM|2823-3^K^LN||7.1|mmol/L|3.5-5.1|HH|||F', 'OBX|2|NM|2951-2^Na^LN||120|mmol/L|135-145|LL|||F']).observations;
  t.same(crit.map((o) => columns(o).l_abnormal_flag), ['critical', 'critical']);
  t.same(one(['OBX|1|NM|718-7^Hb^LN||13|g/dL|||||F'], 'F', '').observations[0]!.identifier?.[0], { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'PLAC', display: 'Placer Identifier' }] }, system: PLACER_ORDER_SYSTEM, value: 'HMS/P1/1' }, 'no filler number: the placer one');
  const none = parseLabMessage([
    'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000+0100||ORU^R01|C1|P|2.5.1', 'PID|1||A1||Doe^Jane', 'OBR|1|||24317-0^Hemogram^LN', 'OBX|1|NM|718-7^Hb^LN||13|g/dL|||||F',
  ].join('\r'));
  t.same(labReportToFhir(none.reports[0]!, none, { patient: 'Patient/p1' }).observations[0]!.identifier?.[0], { system: MESSAGE_SYSTEM, value: 'FAC/C1/1/1' }, 'no order numbers: the message');
  const again = one(['OBX|1|NM|718-7^Hb^LN||13|g/dL|||||F']);
  const resent = one(['OBX|1|NM|718-7^Hb^LN||13.2|g/dL|||||C']);
  t.same(resent.observations[0]!.identifier, again.observations[0]!.identifier, 'a corrected resend has the same identifier');
  const ed = one(['OBX|1|ED|11502-2^Report^LN||^AP^PDF^Base64^JVBERi0=||||||F', 'OBX|2|NM|718-7^Hb^LN||13|g/dL|||||F']);
  t.equal(ed.observations.length, 1, 'ED attachments are left out');
});
