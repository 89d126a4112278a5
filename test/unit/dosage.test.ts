import t from 'tap';
import {
  findDose, findFrequency, parseDose, parseDuration, parseFrequency, renderDose, renderDuration, renderFrequency, structuredDose,
  structuredFrequency, UCUM,
} from '../../src/mappers/dosage.js';

const freq = (text: string): string | undefined => { const f = parseFrequency(text); return f ? renderFrequency(f) : undefined; };

t.test('parses the documented frequency grammar into its canonical text', async (t) => {
  const cases: [string, string][] = [
    ['once daily', 'once daily'], ['daily', 'once daily'], ['QD', 'once daily'], ['once a day', 'once daily'], ['every day', 'once daily'],
    ['twice daily', 'twice daily'], ['twice a day', 'twice daily'], ['BID', 'twice daily'], ['b.i.d.', 'twice daily'],
    ['TID', '3 times daily'], ['three times a day', '3 times daily'], ['QID', '4 times daily'], ['4x per day', '4 times daily'],
    ['q8h', 'every 8 hours'], ['Q6H', 'every 6 hours'], ['every 8 hours', 'every 8 hours'], ['q4-6h', 'every 4-6 hours'],
    ['every four to six hours', 'every 4-6 hours'], ['every hour', 'every hour'], ['hourly', 'every hour'],
    ['QOD', 'every 2 days'], ['every other day', 'every 2 days'], ['weekly', 'once weekly'], ['3 times per week', '3 times weekly'],
    ['every 2 weeks', 'every 2 weeks'], ['1-2 times daily', '1-2 times daily'], ['twice daily as needed', 'twice daily as needed'],
    ['q6h PRN', 'every 6 hours as needed'], ['monthly', 'once monthly'],
  ];
  for (const [input, canonical] of cases) t.equal(freq(input), canonical, input);
  for (const canonical of new Set(cases.map((c) => c[1]))) t.equal(freq(canonical), canonical, `${canonical} is a fixed point`);
});

t.test('refuses text that is not a frequency', async (t) => {
  for (const bad of ['', 'as directed', 'once', 'sometimes', 'every', '8 hours', 'twice', 'as needed']) t.equal(parseFrequency(bad), undefined, bad);
});

t.test('parse gives FHIR Timing.repeat fields', async (t) => {
  t.same(parseFrequency('q4-6h')?.repeat, { frequency: 1, period: 4, periodMax: 6, periodUnit: 'h' });
  t.same(parseFrequency('BID'), { repeat: { frequency: 2, period: 1, periodUnit: 'd' }, asNeeded: false });
  t.equal(parseFrequency('daily prn')?.asNeeded, true);
});

t.test('renders structured timing and timing codes', async (t) => {
  t.equal(renderFrequency(structuredFrequency({ timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd' } } })!), '3 times daily');
  t.equal(renderFrequency(structuredFrequency({ timing: { repeat: { period: 12, periodUnit: 'h' } } })!), 'every 12 hours', 'frequency defaults to 1');
  t.equal(renderFrequency(structuredFrequency({ timing: { code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation', code: 'BID' }] } } })!), 'twice daily');
  t.equal(renderFrequency(structuredFrequency({ timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } }, asNeededBoolean: true })!), 'once daily as needed');
  t.equal(structuredFrequency({ timing: { repeat: { frequency: 2 } } }), undefined, 'no period: no frequency');
  t.equal(structuredFrequency({ timing: { code: { coding: [{ system: 'http://example.org', code: 'BID' }] } } }), undefined, 'BID of another system');
});

t.test('finds a frequency in free text but not ordinary words', async (t) => {
  t.equal(renderFrequency(findFrequency('Take one tablet daily as directed')!), 'once daily');
  t.equal(renderFrequency(findFrequency('one to two tablets every 4-6 hours as needed for rib pain')!), 'every 4-6 hours as needed');
  t.equal(findFrequency('Two tablets at once'), undefined);
  t.equal(findFrequency('take at 8 am'), undefined);
  t.equal(findFrequency(undefined), undefined);
});

t.test('doses: amount and unit, ranges, UCUM units', async (t) => {
  t.same(parseDose('500 mg'), { low: 500, unit: 'mg' });
  t.same(parseDose('1-2 TAB'), { low: 1, high: 2, unit: 'TAB' });
  t.same(parseDose('2.5mL'), { low: 2.5, unit: 'mL' });
  for (const bad of ['mg', '500', 'two', '', 'as directed']) t.equal(parseDose(bad), undefined, bad);
  t.equal(renderDose({ low: 1, high: 2, unit: 'TAB' }), '1-2 TAB');
  t.equal(structuredDose({ doseAndRate: [{ doseQuantity: { value: 500, unit: 'mg', system: UCUM, code: 'mg' } }] }), '500 mg');
  t.equal(structuredDose({ doseAndRate: [{ doseQuantity: { value: 5, code: 'mL', system: UCUM } }] }), '5 mL', 'code stands in for unit');
  t.equal(structuredDose({ doseAndRate: [{ doseQuantity: { value: 5 } }] }), '5 dose', 'a bare number counts doses');
  t.equal(structuredDose({ doseAndRate: [{ doseQuantity: { unit: 'mg' } }] }), undefined, 'no amount: no dose');
  t.same(findDose('Take one tablet daily'), { low: 1, unit: 'tablet' });
  t.same(findDose('one to two puffs'), { low: 1, high: 2, unit: 'puffs' });
  t.equal(findDose('as directed'), undefined);
});

t.test('durations', async (t) => {
  t.equal(renderDuration({ value: 10, unit: 'days', system: UCUM, code: 'd' }), '10 days');
  t.equal(renderDuration({ value: 1, unit: 'wk', system: UCUM, code: 'wk' }), '1 week');
  t.same(parseDuration('30 days'), { value: 30, unit: 'days', system: UCUM, code: 'd' });
  t.same(parseDuration('2 cycles'), { value: 2, unit: 'cycles' });
  t.equal(parseDuration('ongoing'), undefined);
  t.equal(renderDuration(parseDuration('30 days')), '30 days');
});
