import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { Hl7Error, hl7Time, MAX_MESSAGE_BYTES, MAX_SEGMENTS, parseLabMessage, peekHeader, referenceRangeOf, type Hl7ErrorCode } from '../../src/ingest/hl7.js';
import type { LabMessage } from '../../src/ingest/lab-message.js';

const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'hl7v2');
const fixture = (name: string): Buffer => readFileSync(join(dir, name));
const parse = (name: string): LabMessage => parseLabMessage(fixture(name));
const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';

/** The segments of a fixture, without BOM and line ends. */
const segmentsOf = (name: string): string[] => fixture(name).toString('utf8').replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).filter((l) => l !== '');

/** A small valid ORU^R01 with CR endings, whose segments can be replaced. */
const SMALL = [
  'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000+0100||ORU^R01^ORU_R01|CTRL-1|P|2.5.1',
  'PID|1||A1^^^AUTH&1.2.3&ISO^MR~B2^^^NHS^NH||Doe^Jane^Q||19800229|F',
  'OBR|1|P1^HMS|F1^LAB|24317-0^Hemogram^LN|||20240101100000+0100|||||||||||||||20240101113000+0100|||F',
  'OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL^^UCUM|12-16|N|||F|||20240101103000+0100',
];
const small = (replace: Record<number, string | null> = {}, extra: string[] = []): string =>
  [...SMALL.map((s, i) => (i in replace ? replace[i] : s)).filter((s): s is string => s !== null), ...extra].join('\r') + '\r';

function refused(t: Test, input: string | Buffer, code: Hl7ErrorCode, location?: string): void {
  try {
    parseLabMessage(input);
    t.fail(`expected ${code}`);
  } catch (err) {
    t.ok(err instanceof Hl7Error, 'an Hl7Error');
    t.equal((err as Hl7Error).code, code);
    if (location !== undefined) t.equal((err as Hl7Error).location, location);
  }
}

t.test('the nine fixture messages are there', async (t) => {
  t.equal(readdirSync(dir).filter((f) => f.endsWith('.hl7')).length, 9);
});

t.test('LAB-ORU-1: BOM, LF endings, two panels, pending rows without a value', async (t) => {
  t.equal(fixture('LAB-ORU-1.hl7')[0], 0xef, 'the fixture starts with a UTF-8 BOM');
  const m = parse('LAB-ORU-1.hl7');
  t.equal(m.controlId, '182');
  t.equal(m.version, '2.5');
  t.equal(m.messageType, 'ORU^R01');
  t.equal(m.sendingApplication, 'SomeSystem');
  t.equal(m.receivingApplication, 'TransformationAgent');
  t.equal(m.processingId, 'T');
  t.equal(m.sentAt, '2014-10-06T06:45:00+07:00');
  t.same(m.patient, { identifiers: [{ value: '10006579', assigner: '1', type: 'MR' }], family: 'DUCK', given: ['DONALD', 'D'], birthDate: '1924-10-10', gender: 'male' });
  t.equal(m.reports.length, 2);
  const [cbc, diff] = m.reports as [LabMessage['reports'][number], LabMessage['reports'][number]];
  t.same(cbc.code.codings, [{ system: LOINC, systemName: 'LN', code: '24317-0', display: 'Hemogram and platelet count, automated' }]);
  t.equal(cbc.placerId, '88502218');
  t.equal(cbc.fillerId, '82503246');
  t.equal(cbc.status, 'F');
  t.equal(cbc.issuedAt, undefined, 'this sample has its report time in OBR-23, not OBR-22');
  t.equal(cbc.observedAt, undefined, 'OBR-7 is empty');
  t.same(cbc.orderingProvider, { family: 'URO' });
  t.equal(cbc.results.length, 5);
  t.same(cbc.results[0], { key: '1', setId: '1', valueType: 'NM', code: { codings: [{ system: LOINC, systemName: 'LN', code: '11156-7', display: 'LEUKOCYTES' }] }, abnormalFlags: [], status: 'I', notes: [] }, 'a pending row: no value, no time');
  const ery = cbc.results[1]!;
  t.same(ery.value, { kind: 'quantity', value: 4.06 });
  t.same(ery.units, { code: 'tera.l-1' });
  t.same(ery.abnormalFlags, ['N']);
  t.equal(ery.status, 'P');
  t.equal(ery.observedAt, '2014-10-06T06:27:00+07:00');
  t.equal(cbc.results[4]!.status, 'F');
  t.equal(diff.code.codings[0]!.code, '26464-8');
  t.equal(diff.status, undefined, 'the second OBR leaves OBR-25 empty (its F is in OBR-26)');
  t.equal(diff.results.length, 5);
  t.same(diff.results.map((r) => r.value), [72, 2, 20, 6, 0].map((value) => ({ kind: 'quantity', value })));
  t.same(diff.results[0]!.units, { code: '%' });
});

t.test('LAB-ORU-2: the same patient, final values', async (t) => {
  const m = parse('LAB-ORU-2.hl7');
  t.equal(m.controlId, 'ControlID');
  t.equal(m.patient.identifiers[0]!.value, '10006579');
  t.same(m.reports.map((r) => r.results.length), [5, 5]);
  const hb = m.reports[1]!.results[0]!;
  t.equal(hb.code!.codings[0]!.code, '20509-6');
  t.same(hb.value, { kind: 'quantity', value: 13.4 });
  t.same(hb.units, { code: 'g/l-1' });
  t.ok(m.reports.every((r) => r.results.every((x) => x.status === 'F')));
});

t.test('LRI CBC (v2.5.1, NIST): UCUM units, ranges, critical flags, coded and text results', async (t) => {
  const m = parse('LRI_2.0-NG_CBC_Typ_Message.hl7');
  t.equal(m.controlId, 'NIST-LRI-NG-002.00');
  t.equal(m.version, '2.5.1');
  t.equal(m.sendingApplication, 'NIST Test Lab APP');
  t.equal(m.sendingFacility, 'NIST Lab Facility');
  t.equal(m.receivingFacility, 'NIST EHR Facility');
  t.equal(m.sentAt, '2011-05-31T14:05:51-05:00');
  t.same(m.patient, { identifiers: [{ value: 'PATID1234', assigner: 'NIST MPI', type: 'MR' }], family: 'Jones', given: ['William', 'A'], birthDate: '1961-06-15', gender: 'male' });
  t.equal(m.reports.length, 1);
  const r = m.reports[0]!;
  t.same(r.code, {
    codings: [
      { system: LOINC, systemName: 'LN', code: '57021-8', display: 'CBC W Auto Differential panel in Blood' },
      { system: 'urn:hl7v2:99USI', systemName: '99USI', code: '4456544', display: 'CBC' },
    ],
    text: 'CBC W Auto Differential panel in Blood',
  });
  t.equal(r.placerId, 'ORD666555');
  t.equal(r.placerAssigner, 'NIST EHR');
  t.equal(r.fillerId, 'R-991133');
  t.equal(r.fillerAssigner, 'NIST Lab Filler');
  t.equal(r.observedAt, '2011-01-03T14:34:28-08:00');
  t.equal(r.issuedInstant, '2011-01-04T17:00:28-08:00');
  t.same(r.orderingProvider, { id: '57422', family: 'Radon', given: ['Nicholas'], assigner: 'NIST-AA-1' });
  t.equal(r.results.length, 28);
  const rbc = r.results[0]!;
  t.same(rbc.value, { kind: 'quantity', value: 4.41 });
  t.same(rbc.units, { code: '10*6/uL', display: 'million per microliter', system: UCUM });
  t.same(rbc.referenceRange, { low: 4.3, high: 6.2, text: '4.3 to 6.2' });
  t.equal(rbc.code!.text, 'Erythrocytes [#/volume] in Blood', 'CWE.9 original text');
  t.same(r.results[1]!.abnormalFlags, ['L']);
  t.same(r.results[3]!.abnormalFlags, ['HH']);
  t.same(r.results[3]!.value, { kind: 'quantity', value: 105600 });
  t.same(r.results[11]!.referenceRange, { low: 0, high: 13, text: '0.0 to 13.0' });
  const aniso = r.results[19]!;
  t.equal(aniso.valueType, 'CWE');
  t.same(aniso.value, { kind: 'coded', concept: { codings: [{ system: SNOMED, systemName: 'SCT', code: '260348001', display: 'Present ++ out of ++++' }], text: 'Moderate Anisocytosis' } });
  t.same(aniso.abnormalFlags, ['A']);
  t.same(r.results[25]!.value, { kind: 'string', value: 'Many spherocytes present.' });
  t.ok(r.results.every((x) => x.observedAt === '2011-01-03T14:34:28-08:00' && x.status === 'F'));
  t.same(r.results.map((x) => x.key), r.results.map((_, i) => String(i + 1)));
});

t.test('ORU-R01-01 (v2.5.1 with later segments): \\T\\ decoded, OIDs, sub-ids, specimen and patient OBX', async (t) => {
  const m = parse('ORU-R01-01.hl7');
  t.equal(m.controlId, '2.16.840.1.114222.4.3.3.5.1.2-20120314235954.325');
  t.equal(m.sendingApplication, 'IA PHIMS Stage');
  t.same(m.header.sendingApplication, { namespaceId: 'IA PHIMS Stage', universalId: '2.16.840.1.114222.4.3.3.5.1.2', universalIdType: 'ISO' });
  t.equal(m.sentAt, '2012-03-14T12:59:00-02:15', 'minute precision with an offset');
  t.same(m.patient.identifiers, [{ value: '14', system: 'urn:oid:2.16.840.1.114222.4.3.3.5.1.2', assigner: 'IA PHIMS Stage', type: 'PI' }]);
  t.equal(m.patient.family, 'Finn');
  t.same(m.patient.given, ['Huckleberry']);
  t.equal(m.patient.birthDate, '1963-08-15');
  t.equal(m.reports.length, 1);
  const r = m.reports[0]!;
  t.same(r.code, { codings: [{ system: 'urn:hl7v2:XYZ', systemName: 'XYZ', code: '625-4', display: 'Bacteria identified in Stool by Culture' }], text: 'Enteric Culture' });
  t.equal(r.notes[0], 'Enteric culture includes testing for Salmonella, Shigella, Campylobacter, Yersinia, E.coli O157:H7 & other STECs, and Aeromonas', '\\T\\ is &');
  t.equal(r.notes[1], 'Allergy to peanuts observed.');
  t.equal(r.observedAt, '2002-02-15T07:30:00+02:15');
  t.equal(r.results.length, 3, 'the CWE result and the two specimen OBX after SPM');
  const [culture, pointer, count] = r.results as [LabMessage['reports'][number]['results'][number], LabMessage['reports'][number]['results'][number], LabMessage['reports'][number]['results'][number]];
  t.same(culture.value, { kind: 'coded', concept: { codings: [{ system: SNOMED, systemName: 'SCT', code: '27268008', display: 'Salmonella' }], text: 'Salmonella species' } });
  t.same(culture.notes, ['Submission of serum', 'No Antibodies Detected'], 'NTE after the OBX (past a PRT)');
  t.same(culture.abnormalFlags, ['A']);
  t.same(culture.referenceRange, { low: 70, high: 80, text: '70-80' });
  t.equal(culture.observedAt, '2012-03-01');
  t.equal(culture.key, '1.1');
  t.same(pointer.value, { kind: 'string', value: 'https://testurl.com' }, 'RP: the pointer');
  t.equal(pointer.key, '1.1#2', 'a repeated set id / sub-id gets a unique key');
  t.equal(pointer.status, 'O');
  t.same(count.value, { kind: 'quantity', value: 27 });
  t.same(count.moreValues, ['25'], 'a second repetition of an NM value');
  t.equal(count.status, 'I');
  t.equal(m.patientResults.length, 2, 'the OBX before any OBR');
  t.equal(m.patientResults[1]!.valueType, 'ED');
  t.equal(m.patientResults[1]!.value, undefined);
});

t.test('ORU-R01-RMGEAD (v2.4): SN value, 70_105 range, no coding systems', async (t) => {
  const m = parse('ORU-R01-RMGEAD.hl7');
  t.equal(m.controlId, 'CNTRL-3456');
  t.equal(m.version, '2.4');
  t.equal(m.sendingApplication, 'GHH LAB');
  t.equal(m.sendingFacility, 'ELAB-3');
  t.equal(m.processingId, 'P');
  t.same(m.patient, { identifiers: [{ value: '555-44-4444' }], family: 'EVERYWOMAN', given: ['EVE', 'E'], birthDate: '1962-03-20', gender: 'female' });
  const r = m.reports[0]!;
  t.same(r.code, { codings: [{ code: '15545', display: 'GLUCOSE' }] });
  t.equal(r.observedAt, '2002-02-15T07:30:00+06:00');
  t.same(r.orderingProvider, { id: '555-55-5555', family: 'PRIMARY', given: ['PATRICIA P'] });
  t.equal(r.results.length, 1);
  const glucose = r.results[0]!;
  t.equal(glucose.valueType, 'SN');
  t.same(glucose.value, { kind: 'quantity', value: 182 });
  t.same(glucose.units, { code: 'mg/dl' });
  t.same(glucose.referenceRange, { low: 70, high: 105, text: '70_105' });
  t.same(glucose.abnormalFlags, ['H']);
  t.same(glucose.code, { codings: [{ code: '1554-5', display: 'GLUCOSE' }] }, 'a third component that is no coding system name is not taken as one');
  t.equal(glucose.observedAt, '2002-02-15T07:30:00+06:00', 'OBX-14 empty: OBR-7');
});

t.test('ORU-multiline-short(-mixed) (v2.6): text lines without OBX-3, times without offset', async (t) => {
  const short = parse('ORU-multiline-short.hl7');
  t.equal(short.controlId, 'MSGID00231');
  t.equal(short.version, '2.6');
  t.same(short.patient.identifiers, [{ value: '0d70c6c8', assigner: 'MRN' }]);
  t.equal(short.patient.birthDate, '1963-03-06');
  const r = short.reports[0]!;
  t.same(r.code, { codings: [{ code: '1487', display: 'ECHO CARDIOGRAM COMPLETE' }] });
  t.equal(r.observedAt, '2020-08-02', 'no offset: the date only');
  t.same(r.results.map((x) => [x.valueType, x.code, x.value]), [
    ['TX', undefined, undefined],
    ['TX', undefined, { kind: 'string', value: '[PII] Emergency Department' }],
    ['TX', undefined, { kind: 'string', value: 'ED Encounter Arrival Date: [ADDRESS] [PERSONALNAME]:' }],
  ]);
  const mixed = parse('ORU-multiline-short-mixed.hl7');
  t.equal(mixed.reports[0]!.results.length, 4);
  t.same(mixed.reports[0]!.results[0]!.code, { codings: [{ code: '12345' }] });
  t.equal(mixed.reports[0]!.results[0]!.value, undefined);
  const withOffset = parseLabMessage(fixture('ORU-multiline-short.hl7'), { defaultOffset: '+0100' });
  t.equal(withOffset.reports[0]!.observedAt, '2020-08-02T12:44:55+01:00', 'with a default offset the time is kept');
  t.equal(withOffset.reports[0]!.results[1]!.observedAt, '2020-08-02T12:44:55+01:00');
});

t.test('Simulated Hospital messages (v2.3): two identifiers, [ < 4.5] ranges, NTE, "" units', async (t) => {
  const m = parse('hl7.message.2.ORU_R01.hl7');
  t.equal(m.controlId, '2');
  t.equal(m.version, '2.3');
  t.equal(m.sendingApplication, 'SIMHOSP');
  t.equal(m.sendingFacility, 'SFAC');
  t.same(m.patient.identifiers, [
    { value: '3463070384', assigner: 'SIMULATOR MRN', type: 'MRN' },
    { value: '0059631376', assigner: 'NHSNBR', type: 'NHSNMBR' },
  ], 'PID-3 repetitions; PID-2 repeats the first and is not added twice');
  t.equal(m.patient.family, 'Alexander');
  t.same(m.patient.given, ['Valerie', 'Isabella']);
  t.equal(m.patient.birthDate, '1958-04-09');
  t.equal(m.patient.gender, 'female');
  const r = m.reports[0]!;
  t.same(r.code, { codings: [{ system: 'urn:hl7v2:WinPath', systemName: 'WinPath', code: 'us-0001', display: 'LIPID' }] });
  t.equal(r.results.length, 4);
  t.same(r.results[0]!.value, { kind: 'quantity', value: 1.36 });
  t.same(r.results[0]!.units, { code: 'mmol/L' });
  t.same(r.results[0]!.referenceRange, { high: 4.5, text: '[ < 4.5]' });
  t.same(r.results[2]!.referenceRange, { low: 1.5, text: '[ > 1.5]' });
  t.same(r.results.map((x) => x.notes), [['Memory stair anguish'], ['Decryption drill staff barium'], ['Joey'], ['Remote pavement comment ladder resolve']]);
  const m4 = parse('hl7.message.4.ORU_R01.hl7');
  t.same(m4.patient.identifiers.map((i) => i.value), ['2474909861', '1739738144']);
  t.same(m4.reports[0]!.results.map((x) => [x.valueType, x.value, x.units]), [
    ['TX', { kind: 'string', value: 'MANKL value' }, undefined],
    ['FT', { kind: 'string', value: 'MRI Ankle Lt value' }, undefined],
  ], '"" (HL7 null) units are none');
  t.same(m4.reports[0]!.results[0]!.notes, ['Delay poster leaver']);
});

t.test('every fixture parses the same with CR, LF or CRLF endings, with or without BOM, as text or bytes', async (t) => {
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.hl7'))) {
    const expected = parse(name);
    const segs = segmentsOf(name);
    for (const [label, end] of [['CR', '\r'], ['LF', '\n'], ['CRLF', '\r\n']] as const) {
      for (const bom of ['', '\uFEFF']) {
        const text = bom + segs.join(end) + end;
        t.same(parseLabMessage(text), expected, `${name} ${label}${bom ? ' BOM' : ''} (text)`);
        t.same(parseLabMessage(Buffer.from(text, 'utf8')), expected, `${name} ${label}${bom ? ' BOM' : ''} (bytes)`);
      }
    }
    t.same(parseLabMessage(segs.join('\r')), expected, `${name} without a final segment end`);
  }
});

t.test('escape sequences, repetitions, components and subcomponents are decoded', async (t) => {
  const m = parseLabMessage(small({}, [
    'OBX|2|ST|X1^Text^L||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f \\X41\\||||||F',
    'OBX|3|FT|X2^Formatted^L||line one\\.br\\line two~second paragraph||||||F',
    'NTE|1||Note with \\T\\ and \\S\\~and a second line',
    'OBX|4|TX|X3^Sloppy^L||A&E^ward|||||F',
  ]));
  t.same(m.patient.identifiers, [
    { value: 'A1', system: 'urn:oid:1.2.3', assigner: 'AUTH', type: 'MR' },
    { value: 'B2', assigner: 'NHS', type: 'NH' },
  ], 'PID-3 repetitions with the assigning authority subcomponents');
  t.equal(m.patient.birthDate, '1980-02-29');
  const [, st, ft, sloppy] = m.reports[0]!.results;
  t.same(st!.value, { kind: 'string', value: 'a|b^c&d~e\\f A' }, '\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\X41\\');
  t.same(ft!.value, { kind: 'string', value: 'line one\nline two\nsecond paragraph' }, 'FT: \\.br\\ and repetitions are line breaks');
  t.same(ft!.notes, ['Note with & and ^\nand a second line']);
  t.same(sloppy!.value, { kind: 'string', value: 'A&E^ward' }, 'separators a sender left unescaped in a text stay text');
});

t.test('values: SN comparators and ranges, NM with a comparator, CE, pending and empty', async (t) => {
  const m = parseLabMessage(small({}, [
    'OBX|2|SN|X1^A^L||<^5|mg/L|||||F',
    'OBX|3|SN|X2^B^L||>=^10|mg/L|||||F',
    'OBX|4|SN|X3^C^L||^10^-^20|mg/L|||||F',
    'OBX|5|SN|X4^D^L||^1^:^128||||||F',
    'OBX|6|NM|X5^E^L||<0.01|ng/mL|||||F',
    'OBX|7|NM|X6^F^L||positive||||||F',
    'OBX|8|CE|X7^G^L||POS^Positive^HL70078||||||F',
    'OBX|9|NM|X8^H^L||||||||P',
    'OBX|10|NM|X9^I^L||""||||||F',
  ]));
  t.same(m.reports[0]!.results.slice(1).map((r) => r.value), [
    { kind: 'quantity', value: 5, comparator: '<' },
    { kind: 'quantity', value: 10, comparator: '>=' },
    { kind: 'string', value: '10-20' },
    { kind: 'string', value: '1:128' },
    { kind: 'quantity', value: 0.01, comparator: '<' },
    { kind: 'string', value: 'positive' },
    { kind: 'coded', concept: { codings: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0078', systemName: 'HL70078', code: 'POS', display: 'Positive' }] } },
    undefined,
    undefined,
  ]);
  t.same(m.reports[0]!.results[0]!.units, { code: 'g/dL', system: UCUM });
});

t.test('refused: not HL7, other types and versions, missing segments and fields', async (t) => {
  refused(t, 'hello world', 'unparseable');
  refused(t, '', 'unparseable');
  refused(t, '\r\n\r\n', 'unparseable');
  refused(t, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x80, 0x01, 0x02, 0x1b, 0x0b, 0x1c]), 'unparseable');
  refused(t, Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) % 256)), 'unparseable');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000||ADT^A01^ADT_A01|C9|P|2.5.1' }), 'unsupported-type', 'MSH-9');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000||ORU^R30|C9|P|2.5.1' }), 'unsupported-type', 'MSH-9');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000||ORU^R01|C9|P|2.2' }), 'unsupported-version', 'MSH-12');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000||ORU^R01|C9|P|2.8' }), 'unsupported-version', 'MSH-12');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000||ORU^R01|C9|P|' }), 'missing-field', 'MSH-12');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000||ORU^R01||P|2.5' }), 'missing-field', 'MSH-10');
  refused(t, small({ 0: 'MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101120000|||C9|P|2.5' }), 'missing-field', 'MSH-9');
  refused(t, small({ 1: null }), 'missing-segment', 'PID');
  refused(t, small({ 2: null, 3: null }), 'missing-segment', 'OBR');
  refused(t, small({ 1: 'PID|1||||Doe^Jane' }), 'missing-field', 'PID-3');
  refused(t, small({ 2: 'OBR|1|P1|F1|||20240101' }), 'missing-field', 'OBR-4');
  refused(t, small({}, ['PID|2||X9||Other^Person']), 'unsupported-type', 'PID');
  refused(t, small({}, ['MSH|^~\\&|LAB|FAC|HMS|HOSP|20240101||ORU^R01|C2|P|2.5']), 'unparseable');
  refused(t, small({ 0: 'MSH|^~|LAB|FAC' }), 'unparseable');
  refused(t, small({}, ['this is no segment']), 'unparseable');
  refused(t, small({}, ['NTE|1||bell \u0007 here']), 'unparseable');
});

t.test('refused: invalid dates and times, without the value in the message', async (t) => {
  for (const bad of ['20241301', '20240230', '2024010125', '202401011261', '0000', '2024-01-01', '20240101+2500', 'yesterday']) {
    try {
      parseLabMessage(small({ 3: `OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|||||F|||${bad}` }));
      t.fail(bad);
    } catch (err) {
      t.equal((err as Hl7Error).code, 'invalid-field', bad);
      t.equal((err as Hl7Error).location, 'OBX-14');
      t.equal((err as Hl7Error).sequence, 1);
      t.notMatch((err as Error).message, bad, 'the message does not repeat the value');
    }
  }
  refused(t, small({ 1: 'PID|1||A1||Doe^Jane||19801399|F' }), 'invalid-field', 'PID-7');
});

t.test('refused: over 1 MB or over 10,000 segments', async (t) => {
  const big = small({}, [`NTE|1||${'x'.repeat(MAX_MESSAGE_BYTES)}`]);
  refused(t, big, 'unparseable');
  refused(t, Buffer.from(big), 'unparseable');
  refused(t, small({}, [`NTE|1||${'é'.repeat(MAX_MESSAGE_BYTES / 2)}`]), 'unparseable', undefined);
  refused(t, small({}, Array.from({ length: MAX_SEGMENTS }, () => 'NTE|1||n')), 'unparseable');
  t.ok(parseLabMessage(small({}, Array.from({ length: MAX_SEGMENTS - SMALL.length }, () => 'NTE|1||n'))), '10,000 segments are fine');
});

t.test('peekHeader reads the MSH of what does not parse', async (t) => {
  t.same(peekHeader('hello world'), {});
  t.same(peekHeader(Buffer.from([0, 1, 2, 3])), {});
  const adt = peekHeader('\uFEFFMSH|^~\\&|ADT1|GOOD HEALTH|HMS|HOSP^1.2.3^ISO|20240101||ADT^A01^ADT_A01|MSG00001|T|2.2\rEVN|A01\r');
  t.same(adt, {
    separators: { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' },
    controlId: 'MSG00001',
    sendingApplication: { namespaceId: 'ADT1' },
    sendingFacility: { namespaceId: 'GOOD HEALTH' },
    receivingApplication: { namespaceId: 'HMS' },
    receivingFacility: { namespaceId: 'HOSP', universalId: '1.2.3', universalIdType: 'ISO' },
    messageType: { code: 'ADT', trigger: 'A01', structure: 'ADT_A01' },
    processingId: 'T',
    version: '2.2',
  });
  t.equal(peekHeader(Buffer.from('MSH|^~\\&|A|B|C|D|2024||ORU^R01|CUT-1|P|2.5\rPID|1||')).controlId, 'CUT-1', 'a message cut short');
  t.equal(peekHeader('MSH#^~\\&#A#B#C#D#2024##ORU^R01#ODD-1#P#2.5').controlId, 'ODD-1', 'other separators');
  t.equal(peekHeader('MSH|^~\\&|A|B|C|D|2024||ORU^R01|CTL\\F\\1|P|2.5').controlId, 'CTL|1', 'decoded');
  t.equal(peekHeader(fixture('ORU-R01-01.hl7')).version, '2.5.1');
  t.same(peekHeader('MSH|^~|bad'), {});
});

t.test('hl7Time: FHIR dateTime at the precision sent', async (t) => {
  const at = { segment: 'OBX', field: 14 };
  t.same(hl7Time('2012', at), { dateTime: '2012' });
  t.same(hl7Time('201203', at), { dateTime: '2012-03' });
  t.same(hl7Time('20120314', at), { dateTime: '2012-03-14' });
  t.same(hl7Time('20120314+0100', at), { dateTime: '2012-03-14' }, 'a date has no offset');
  t.same(hl7Time('2012031412-0500', at), { dateTime: '2012-03-14T12:00:00-05:00' });
  t.same(hl7Time('201203141259-0215', at), { dateTime: '2012-03-14T12:59:00-02:15' });
  t.same(hl7Time('20120314125901+0000', at), { dateTime: '2012-03-14T12:59:01+00:00', instant: '2012-03-14T12:59:01+00:00' });
  t.same(hl7Time('20120314125901.1234+1400', at), { dateTime: '2012-03-14T12:59:01.1234+14:00', instant: '2012-03-14T12:59:01.1234+14:00' });
  t.same(hl7Time('20120314125901', at), { dateTime: '2012-03-14' }, 'no offset: the date');
  t.same(hl7Time('20120314125901', at, { defaultOffset: '-05:00' }), { dateTime: '2012-03-14T12:59:01-05:00', instant: '2012-03-14T12:59:01-05:00' });
  t.same(hl7Time('20120314125901', at, { defaultOffset: 'Z' }), { dateTime: '2012-03-14T12:59:01Z', instant: '2012-03-14T12:59:01Z' });
  t.equal(hl7Time('', at), undefined);
  t.equal(hl7Time('""', at), undefined);
  t.same(hl7Time('20000229', at), { dateTime: '2000-02-29' });
  t.throws(() => hl7Time('19000229', at), { code: 'invalid-field' });
  t.throws(() => hl7Time('20120314+1430', at), { code: 'invalid-field' });
});

t.test('referenceRangeOf', async (t) => {
  t.same(referenceRangeOf('4.3 to 6.2'), { low: 4.3, high: 6.2, text: '4.3 to 6.2' });
  t.same(referenceRangeOf('70_105'), { low: 70, high: 105, text: '70_105' });
  t.same(referenceRangeOf('70-80'), { low: 70, high: 80, text: '70-80' });
  t.same(referenceRangeOf('-5 - -1'), { low: -5, high: -1, text: '-5 - -1' });
  t.same(referenceRangeOf('[ < 4.5]'), { high: 4.5, text: '[ < 4.5]' });
  t.same(referenceRangeOf('<5'), { high: 5, text: '<5' });
  t.same(referenceRangeOf('>=10'), { low: 10, text: '>=10' });
  t.same(referenceRangeOf('negative'), { text: 'negative' });
  t.same(referenceRangeOf('10-5'), { text: '10-5' }, 'low above high: text only');
  t.equal(referenceRangeOf('  '), undefined);
});
