/** String normalisation for string search: case- and accent-insensitive. https://hl7.org/fhir/R4/search.html#string */
export function normalizeString(value: string): string {
  return value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();
}

/** Longest indexed value (characters): longer strings are indexed by their prefix. */
export const INDEX_VALUE_LENGTH = 255;
