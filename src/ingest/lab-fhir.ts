/**
 * One OBR of a parsed ORU^R01 (lab-message.ts) -> FHIR R4 Observations (one per result) and a
 * DiagnosticReport, shaped so that HMS's write path stores them as lab_results rows
 * (docs/resources/Observation.md "Everything else -> lab_results"). Pure, no I/O. docs/hl7v2.md.
 */
import type { CodeableConcept, Coding as FhirCoding, Identifier, Reference } from '../fhir/types.js';
import type { DiagnosticReport } from '../mappers/diagnostic-report-mapper.js';
import { UCUM_LAB_UNITS, V3_INTERPRETATION } from '../mappers/lab-result-mapper.js';
import { OBSERVATION_CATEGORY, UCUM, type Observation, type Quantity } from '../mappers/observation-mapper.js';
import type { Concept, LabMessage, LabReport, LabResult } from './lab-message.js';

export const FILLER_ORDER_SYSTEM = 'urn:hl7v2:filler-order';
export const PLACER_ORDER_SYSTEM = 'urn:hl7v2:placer-order';
/** Reports with neither a filler nor a placer order number: identified by the message. */
export const MESSAGE_SYSTEM = 'urn:hl7v2:message';
const V2_0074 = 'http://terminology.hl7.org/CodeSystem/v2-0074';
const V2_0203 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const DATA_ABSENT_REASON = 'http://terminology.hl7.org/CodeSystem/data-absent-reason';

export interface LabFhirRefs {
  /** `Patient/<id>` */
  patient: string;
  /** `Practitioner/<id>`: Observation.performer (lab_results.ordered_by) and DiagnosticReport.performer */
  performer?: string;
}

/** An Observation as made here (the elements set, typed). */
export interface LabObservation extends Observation {
  identifier: Identifier[];
  dataAbsentReason?: CodeableConcept;
}

/** A DiagnosticReport as made here. */
export interface LabDiagnosticReport extends DiagnosticReport {
  identifier: Identifier[];
  performer?: Reference[];
  conclusion?: string;
}

export interface LabFhir {
  /** One per OBX that is a result (ED attachments left out; lines of a text report without OBX-3 joined into one) */
  observations: LabObservation[];
  /**
   * The OBR as a DiagnosticReport, without `result`: every observation above is one of its
   * results, in order. Once they are stored, set `result` to their references
   * (`observations.map((_, i) => ({ reference: 'Observation/' + storedId[i] }))`).
   */
  report: LabDiagnosticReport;
}

/** OBX-11 -> Observation.status (P, I, R, S: preliminary, HMS's in_progress). */
const OBSERVATION_STATUS: Record<string, string> = {
  F: 'final', C: 'corrected', U: 'final', P: 'preliminary', I: 'preliminary', R: 'preliminary', S: 'preliminary',
  O: 'registered', X: 'cancelled', N: 'cancelled', D: 'entered-in-error', W: 'entered-in-error',
};
/** OBR-25 -> DiagnosticReport.status. */
const REPORT_STATUS: Record<string, string> = {
  F: 'final', C: 'corrected', P: 'preliminary', R: 'preliminary', S: 'partial', A: 'partial', I: 'registered', O: 'registered', X: 'cancelled',
};
/** DiagnosticReport.status -> Observation.status, for an OBX that gives none. */
const OBSERVATION_FROM_REPORT: Record<string, string> = {
  final: 'final', corrected: 'corrected', preliminary: 'preliminary', partial: 'preliminary', registered: 'registered', cancelled: 'cancelled',
};

/** OBX-8 codes that are v3 ObservationInterpretation codes too, with their displays. */
const INTERPRETATION: Record<string, string> = {
  N: 'Normal', L: 'Low', H: 'High', LL: 'Critical low', HH: 'Critical high', LU: 'Significantly low', HU: 'Significantly high',
  A: 'Abnormal', AA: 'Critical abnormal', '<': 'Off scale low', '>': 'Off scale high',
  U: 'Significant change up', D: 'Significant change down', B: 'Better', W: 'Worse',
  S: 'Susceptible', R: 'Resistant', I: 'Intermediate', MS: 'Moderately susceptible', VS: 'Very susceptible',
  POS: 'Positive', NEG: 'Negative', IND: 'Indeterminate', DET: 'Detected', ND: 'Not detected',
};

const TEXT_TYPES = new Set(['ST', 'TX', 'FT']);
const isText = (r: LabResult): boolean => r.valueType === undefined || TEXT_TYPES.has(r.valueType);

function codeableConcept(c: Concept): CodeableConcept {
  const cc: CodeableConcept = {};
  if (c.codings.length) {
    cc.coding = c.codings.map((x) => {
      const coding: FhirCoding = {};
      if (x.system) coding.system = x.system;
      coding.code = x.code;
      if (x.display) coding.display = x.display;
      return coding;
    });
  }
  if (c.text) cc.text = c.text;
  return cc;
}

function ucumUnits(r: LabResult): Omit<Quantity, 'value'> {
  const u = r.units;
  if (!u) return {};
  if (u.system === UCUM || UCUM_LAB_UNITS.has(u.code)) return { unit: u.code, system: UCUM, code: u.code };
  return { unit: u.code };
}

function interpretation(flag: string): CodeableConcept {
  const display = INTERPRETATION[flag];
  return display ? { coding: [{ system: V3_INTERPRETATION, code: flag, display }], text: display } : { text: flag };
}

const dataAbsent = (code: string, display: string): CodeableConcept => ({ coding: [{ system: DATA_ABSENT_REASON, code, display }], text: display });

/** The identifier of the OBR (filler order number, else placer, else message and position). */
function orderIdentifier(report: LabReport, msg: LabMessage): Identifier {
  const join = (...parts: (string | undefined)[]): string => parts.filter((p) => p !== undefined && p !== '').join('/');
  const source = msg.sendingFacility ?? msg.sendingApplication;
  if (report.fillerId) {
    return { type: { coding: [{ system: V2_0203, code: 'FILL', display: 'Filler Identifier' }] }, system: FILLER_ORDER_SYSTEM, value: join(report.fillerAssigner ?? source, report.fillerId) };
  }
  if (report.placerId) {
    return { type: { coding: [{ system: V2_0203, code: 'PLAC', display: 'Placer Identifier' }] }, system: PLACER_ORDER_SYSTEM, value: join(report.placerAssigner ?? source, report.placerId) };
  }
  return { system: MESSAGE_SYSTEM, value: join(source, msg.controlId, String(msg.reports.indexOf(report) + 1)) };
}

/**
 * The results of a report as the observations to make: ED (encapsulated data) is left out; a run
 * of text OBX without OBX-3 (the lines of one text report) is one observation.
 */
function groups(report: LabReport): LabResult[][] {
  const out: LabResult[][] = [];
  let lines: LabResult[] | undefined;
  for (const r of report.results) {
    if (r.valueType === 'ED') { lines = undefined; continue; }
    if (!r.code && isText(r)) {
      if (lines) lines.push(r);
      else out.push((lines = [r]));
      continue;
    }
    lines = undefined;
    out.push([r]);
  }
  return out;
}

function observationOf(group: LabResult[], report: LabReport, refs: LabFhirRefs, base: Identifier, reportStatus: string): LabObservation {
  const first = group[0]!;
  const status = OBSERVATION_STATUS[first.status ?? ''] ?? OBSERVATION_FROM_REPORT[reportStatus] ?? 'final';
  const o: LabObservation = {
    resourceType: 'Observation',
    identifier: [{ ...base, value: `${base.value}/${first.key}` }],
    status,
    category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'laboratory', display: 'Laboratory' }] }],
    code: codeableConcept(first.code ?? report.code),
    subject: { reference: refs.patient },
  };
  if (first.observedAt) o.effectiveDateTime = first.observedAt;
  if (report.issuedInstant) o.issued = report.issuedInstant;
  if (refs.performer) o.performer = [{ reference: refs.performer }];

  const notes = group.flatMap((r) => r.notes);
  if (group.length > 1 || (!first.code && isText(first))) {
    const lines = group.map((r) => (r.value?.kind === 'string' ? r.value.value : ''));
    while (lines.length && lines[0]!.trim() === '') lines.shift();
    while (lines.length && lines[lines.length - 1]!.trim() === '') lines.pop();
    if (lines.length) o.valueString = lines.join('\n');
  } else {
    const v = first.value;
    if (v?.kind === 'quantity') {
      const q: Quantity = { value: v.value };
      if (v.comparator) q.comparator = v.comparator;
      o.valueQuantity = { ...q, ...ucumUnits(first) };
    } else if (v?.kind === 'string') {
      o.valueString = v.value;
    } else if (v?.kind === 'coded') {
      o.valueCodeableConcept = codeableConcept(v.concept);
    }
    if (first.moreValues) notes.push(`Further values reported (OBX-5 repetitions): ${first.moreValues.join('; ')}`);
  }
  if (o.valueQuantity === undefined && o.valueString === undefined && o.valueCodeableConcept === undefined) {
    if (status === 'preliminary' || status === 'registered') o.dataAbsentReason = dataAbsent('temp-unknown', 'Temporarily Unknown');
    else if (status === 'cancelled') o.dataAbsentReason = dataAbsent('not-performed', 'Not Performed');
    else if (status !== 'entered-in-error') o.dataAbsentReason = dataAbsent('unknown', 'Unknown');
  }
  const flags = [...new Set(group.flatMap((r) => r.abnormalFlags))];
  if (flags.length) o.interpretation = flags.map(interpretation);
  if (notes.length) o.note = [{ text: notes.join('\n') }];
  const range = first.referenceRange;
  if (range && group.length === 1) {
    const units = o.valueQuantity ? ucumUnits(first) : first.units ? { unit: first.units.code } : {};
    const rr: NonNullable<Observation['referenceRange']>[number] = {};
    if (range.low !== undefined) rr.low = { value: range.low, ...units };
    if (range.high !== undefined) rr.high = { value: range.high, ...units };
    rr.text = range.text;
    o.referenceRange = [rr];
  }
  return o;
}

/**
 * FHIR resources of one OBR of a message: Observations (status from OBX-11, else OBR-25, else
 * final; category laboratory; code OBX-3 (OBR-4 for text lines without one); value from OBX-5 as
 * valueQuantity (UCUM system and code when the units are UCUM: OBX-6.3 says so or the code is a
 * common UCUM code), valueString (ST, TX, FT, RP pointers, SN ranges and ratios, anything
 * else), valueCodeableConcept (CE, CWE, CNE); no value: dataAbsentReason temp-unknown when
 * preliminary, not-performed when cancelled, unknown when final; referenceRange from OBX-7;
 * interpretation from OBX-8 (v3 codes, unknown flags as text); effectiveDateTime OBX-14, else
 * OBR-7; issued OBR-22 when it is an instant; note the NTE after the OBX; identifier
 * `urn:hl7v2:filler-order` + `<filler namespace>/<filler order number>/<OBX key>`, the same when
 * the message is sent again) and the DiagnosticReport (status OBR-25; category LAB (v2-0074);
 * code OBR-4; effectiveDateTime OBR-7; issued OBR-22; conclusion the NTE after the OBR;
 * identifier the order's). `result` is left out of the report: its results are the
 * observations, in order (see LabFhir.report).
 */
export function labReportToFhir(report: LabReport, msg: LabMessage, refs: LabFhirRefs): LabFhir {
  const base = orderIdentifier(report, msg);
  const reportStatus = REPORT_STATUS[report.status ?? ''] ?? 'final';
  const observations = groups(report).map((g) => observationOf(g, report, refs, base, reportStatus));
  const dr: LabDiagnosticReport = {
    resourceType: 'DiagnosticReport',
    identifier: [base],
    status: reportStatus,
    category: [{ coding: [{ system: V2_0074, code: 'LAB', display: 'Laboratory' }] }],
    code: codeableConcept(report.code),
    subject: { reference: refs.patient },
  };
  if (report.observedAt) dr.effectiveDateTime = report.observedAt;
  if (report.issuedInstant) dr.issued = report.issuedInstant;
  if (refs.performer) dr.performer = [{ reference: refs.performer }];
  if (report.notes.length) dr.conclusion = report.notes.join('\n');
  return { observations, report: dr };
}
