/** String normalisation for string search: case- and accent-insensitive. https://hl7.org/fhir/R4/search.html#string */
export function normalizeString(value: string): string {
  return value.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();
}

/** Longest indexed value (characters): longer strings are indexed by their prefix. */
export const INDEX_VALUE_LENGTH = 255;

/** The length of a string in characters: code points, a surrogate pair counting once. */
export function characterCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}
