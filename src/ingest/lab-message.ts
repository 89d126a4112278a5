/**
 * One HL7 v2 ORU^R01 lab result message as a neutral structure: what `parseLabMessage` (hl7.ts)
 * reads out of the message, before any FHIR or database mapping (lab-fhir.ts). Every string is
 * decoded (escape sequences resolved, `""` taken as empty); times are FHIR dateTime strings at
 * the precision the sender used (see `hl7Time` in hl7.ts). Types only. docs/hl7v2.md.
 */

/** The encoding characters of a message (MSH-1 and MSH-2). */
export interface Hl7Separators {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

/** An HD (hierarchic designator): MSH-3 to MSH-6, CX.4 and EI.2-4. */
export interface HierarchicDesignator {
  /** HD.1, e.g. `NIST Lab Facility` */
  namespaceId?: string;
  /** HD.2, e.g. an OID */
  universalId?: string;
  /** HD.3, e.g. `ISO` */
  universalIdType?: string;
}

/**
 * What can be read from an MSH segment, also from a message that does not parse as a whole
 * (`peekHeader`): enough to address an ACK.
 */
export interface Hl7Header {
  /** MSH-10 */
  controlId?: string;
  /** MSH-3 */
  sendingApplication?: HierarchicDesignator;
  /** MSH-4 */
  sendingFacility?: HierarchicDesignator;
  /** MSH-5 */
  receivingApplication?: HierarchicDesignator;
  /** MSH-6 */
  receivingFacility?: HierarchicDesignator;
  /** MSH-9: message code, trigger event, structure (e.g. ORU, R01, ORU_R01) */
  messageType?: { code?: string; trigger?: string; structure?: string };
  /** MSH-12.1, e.g. `2.5.1` */
  version?: string;
  /** MSH-11.1: P production, T training, D debugging */
  processingId?: string;
  /** MSH-1 and MSH-2, when the segment starts the way an MSH must */
  separators?: Hl7Separators;
}

/** One code of a coded element (CE / CWE / CNE). */
export interface Coding {
  /**
   * The coding system as a URI: LN -> http://loinc.org, SCT/SNM/SN -> http://snomed.info/sct,
   * UCUM -> http://unitsofmeasure.org, HL7nnnn -> http://terminology.hl7.org/CodeSystem/v2-nnnn,
   * any other name -> `urn:hl7v2:<name>`; absent when the sender named no system.
   */
  system?: string;
  /** The name of the coding system as sent (component 3 or 6), e.g. `LN`, `99USI`. */
  systemName?: string;
  code: string;
  display?: string;
}

/**
 * A coded element: the primary coding (components 1-3) first, then the alternate one (4-6), and
 * the original text (CWE.9, else the text of a coding that has no code).
 */
export interface Concept {
  codings: Coding[];
  text?: string;
}

/** One PID-3 identifier (CX). */
export interface PatientIdentifier {
  /** CX.1 */
  value: string;
  /** `urn:oid:<CX.4.2>` when the assigning authority is an ISO OID, `urn:uuid:` for a UUID; else absent */
  system?: string;
  /** CX.4.1 (the assigning authority's namespace id), else CX.4.2 */
  assigner?: string;
  /** CX.5 identifier type code, e.g. MR, PI, NH */
  type?: string;
}

export interface LabPatient {
  /** PID-3 (every repetition), then PID-2 (the v2.3 external id) when it is not among them */
  identifiers: PatientIdentifier[];
  /** PID-5 legal name (XPN.7 = L), else the first: XPN.1 surname */
  family?: string;
  /** XPN.2 given name and XPN.3 middle names */
  given?: string[];
  /** PID-7 as YYYY, YYYY-MM or YYYY-MM-DD */
  birthDate?: string;
  /** PID-8: M male, F female, O/A/N other, U unknown */
  gender?: 'male' | 'female' | 'other' | 'unknown';
}

/** A person from an XCN (OBR-16, ORC-12). */
export interface Hl7Person {
  id?: string;
  family?: string;
  given?: string[];
  /** XCN.9 assigning authority (namespace, else universal id) */
  assigner?: string;
}

export type LabValue =
  | { kind: 'quantity'; value: number; comparator?: '<' | '<=' | '>=' | '>' }
  | { kind: 'string'; value: string }
  | { kind: 'coded'; concept: Concept };

export interface LabUnits {
  /** OBX-6.1 (or the text when the sender sent no identifier) */
  code: string;
  /** OBX-6.2 */
  display?: string;
  /** OBX-6.3 as a URI (http://unitsofmeasure.org when the sender says UCUM) */
  system?: string;
}

/** OBX-7 read as a range when it is one (`4.3 to 6.2`, `70_105`, `70-80`, `[ < 4.5]`, `<5`, `>=10`). */
export interface LabReferenceRange {
  low?: number;
  high?: number;
  /** The range as sent (decoded, trimmed) */
  text: string;
}

/** One OBX. */
export interface LabResult {
  /** OBX-1 */
  setId?: string;
  /** OBX-4 observation sub-id */
  subId?: string;
  /**
   * A key of this OBX unique within its report and the same when the message is sent again:
   * the set id (plus `.subId`), else the OBX's position in the report, plus `#n` for the n-th
   * repeat of a key already used.
   */
  key: string;
  /** OBX-2 (NM, SN, ST, TX, FT, CE, CWE, RP, ED ...) */
  valueType?: string;
  /** OBX-3; absent when the sender left it empty (lines of a text report) */
  code?: Concept;
  /** OBX-5 (its first repetition; text types join repetitions by newlines); absent when empty */
  value?: LabValue;
  /** OBX-5 repetitions after the first, as text, for types that hold one value (NM, SN, CE ...) */
  moreValues?: string[];
  /** OBX-6 */
  units?: LabUnits;
  /** OBX-7 */
  referenceRange?: LabReferenceRange;
  /** OBX-8, each repetition's code (N, L, H, LL, HH, A, AA, <, > ...) */
  abnormalFlags: string[];
  /** OBX-11 as sent (F, C, P, I, R, X, D ...) */
  status?: string;
  /** OBX-14, else the report's OBR-7 */
  observedAt?: string;
  /** The NTE segments after this OBX (NTE-3, repetitions joined by newlines) */
  notes: string[];
}

/** One OBR with its OBX. */
export interface LabReport {
  /** OBR-2.1 placer order number, else ORC-2.1 */
  placerId?: string;
  /** OBR-2.2 (namespace), else OBR-2.3 */
  placerAssigner?: string;
  /** OBR-3.1 filler order number, else ORC-3.1 */
  fillerId?: string;
  /** OBR-3.2 (namespace), else OBR-3.3 */
  fillerAssigner?: string;
  /** OBR-4 universal service identifier (the test or panel ordered) */
  code: Concept;
  /** OBR-25 as sent (F, C, P, X ...) */
  status?: string;
  /** OBR-7 observation (collection) date/time */
  observedAt?: string;
  /** OBR-22 results report / status change date/time */
  issuedAt?: string;
  /** OBR-22 as a FHIR instant: only when it was given to the second, with its UTC offset */
  issuedInstant?: string;
  /** OBR-16 ordering provider, else ORC-12 */
  orderingProvider?: Hl7Person;
  /** NTE segments after the OBR before its first OBX (and stray ones inside the order) */
  notes: string[];
  /** The OBX segments of the order, in message order (specimen OBX after SPM included) */
  results: LabResult[];
}

export interface LabMessage {
  /** The MSH as read (for the ACK: `ackMessage(msg.header, 'AA')`) */
  header: Hl7Header;
  /** MSH-10 */
  controlId: string;
  /** MSH-3.1, else MSH-3.2 */
  sendingApplication?: string;
  /** MSH-4.1, else MSH-4.2 */
  sendingFacility?: string;
  /** MSH-5.1, else MSH-5.2 */
  receivingApplication?: string;
  /** MSH-6.1, else MSH-6.2 */
  receivingFacility?: string;
  /** MSH-12.1: 2.3, 2.3.1, 2.4, 2.5, 2.5.1 or 2.6 */
  version: string;
  /** `ORU^R01` */
  messageType: string;
  /** MSH-11.1 */
  processingId?: string;
  /** MSH-7 */
  sentAt?: string;
  patient: LabPatient;
  reports: LabReport[];
  /**
   * OBX segments that belong to no order (before the first OBR: observations about the
   * patient). Kept for completeness; `labReportToFhir` does not map them.
   */
  patientResults: LabResult[];
}
