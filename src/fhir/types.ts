/** Loose FHIR JSON shapes: resources are validated against the official schema, then handled as JSON. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export interface Resource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; lastUpdated?: string; [k: string]: unknown };
  [key: string]: unknown;
}
export interface Coding { system?: string; code?: string; display?: string; [k: string]: unknown }
export interface CodeableConcept { coding?: Coding[]; text?: string; [k: string]: unknown }
export interface Reference { reference?: string; display?: string; [k: string]: unknown }
export interface Identifier { system?: string; value?: string; [k: string]: unknown }
export interface ContactPoint { system?: string; value?: string; use?: string; rank?: number; [k: string]: unknown }
export interface HumanName { use?: string; text?: string; family?: string; given?: string[]; prefix?: string[]; suffix?: string[]; [k: string]: unknown }
export interface Address {
  use?: string; type?: string; text?: string; line?: string[]; city?: string; district?: string;
  state?: string; postalCode?: string; country?: string; [k: string]: unknown;
}
export interface Extension { url: string; [k: string]: unknown }
