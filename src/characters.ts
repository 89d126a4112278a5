/**
 * Characters no FHIR value holds (https://hl7.org/fhir/R4/datatypes.html#string): the C0 controls
 * other than tab, line feed and carriage return (XML cannot carry them), and lone UTF-16
 * surrogates, which are no Unicode text at all (utf8mb4 columns and the database drivers would
 * store U+FFFD instead). One place for the API's refusals and the security log's repair.
 */

/** With the u flag a surrogate pair is one code point, so \p{Cs} matches lone surrogates only. */
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]|\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/** The first character of a text that no FHIR value holds, as its code point, or undefined. */
export function forbiddenCharacter(text: string): number | undefined {
  return FORBIDDEN.exec(text)?.[0].codePointAt(0);
}

/** A code point as U+XXXX. */
export const codePointName = (code: number): string => `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;

/** Whether a code point is a (lone) UTF-16 surrogate. */
export const isSurrogate = (code: number): boolean => code >= 0xd800 && code <= 0xdfff;

/** A text with each lone surrogate replaced by U+FFFD, as utf8mb4 would store it. */
export const wellFormed = (s: string): string => s.replace(LONE_SURROGATES, '\uFFFD');
