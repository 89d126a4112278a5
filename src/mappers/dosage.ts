/**
 * The dose, frequency and duration grammar of the prescriptions columns (dosage, frequency,
 * duration), both ways: FHIR Dosage / Timing / Duration -> canonical text, and text (from a
 * column written natively or from Dosage.text) -> FHIR. Pure, no I/O; documented in
 * docs/resources/MedicationRequest.md. https://hl7.org/fhir/R4/dosage.html https://hl7.org/fhir/R4/datatypes.html#Timing
 */
import type { CodeableConcept } from '../fhir/types.js';

export const UCUM = 'http://unitsofmeasure.org';
export const GTS_ABBREVIATION = 'http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation';

export interface Quantity { value?: number; unit?: string; system?: string; code?: string; [k: string]: unknown }
export interface TimingRepeat {
  frequency?: number; frequencyMax?: number; period?: number; periodMax?: number; periodUnit?: string; [k: string]: unknown;
}
export interface Timing { repeat?: TimingRepeat; code?: CodeableConcept; [k: string]: unknown }
export interface DoseAndRate { doseQuantity?: Quantity; doseRange?: { low?: Quantity; high?: Quantity }; [k: string]: unknown }
export interface Dosage {
  text?: string; patientInstruction?: string; timing?: Timing; asNeededBoolean?: boolean; asNeededCodeableConcept?: CodeableConcept;
  doseAndRate?: DoseAndRate[]; [k: string]: unknown;
}

/** A dose: an amount (or a low-high range) and a unit. */
export interface Dose { low: number; high?: number; unit: string }
/** A frequency: the Timing.repeat fields it sets, and whether the dose is taken as needed. */
export interface Frequency { repeat: Required<Pick<TimingRepeat, 'frequency' | 'period' | 'periodUnit'>> & TimingRepeat; asNeeded: boolean }

const fmt = (n: number): string => String(n);

// ---------------------------------------------------------------- words and units

const WORD_NUMBERS: Record<string, string> = {
  one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9', ten: '10', eleven: '11', twelve: '12',
};

/** Lower case, single spaces, word numbers as digits, "4 to 6" as "4-6". */
function normalise(text: string): string {
  return text.toLowerCase()
    .replace(/\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\b/g, (w) => WORD_NUMBERS[w]!)
    .replace(/(\d)\s*(?:-|–|to)\s*(\d)/g, '$1-$2')
    .replace(/\s+/g, ' ').replace(/[.;,]+$/, '').trim();
}

/** UCUM time units: singular word, plural word, adverb ("daily"). */
const TIME_UNITS: Record<string, { one: string; many: string; adverb?: string }> = {
  s: { one: 'second', many: 'seconds' },
  min: { one: 'minute', many: 'minutes' },
  h: { one: 'hour', many: 'hours', adverb: 'hourly' },
  d: { one: 'day', many: 'days', adverb: 'daily' },
  wk: { one: 'week', many: 'weeks', adverb: 'weekly' },
  mo: { one: 'month', many: 'months', adverb: 'monthly' },
  a: { one: 'year', many: 'years', adverb: 'yearly' },
};
const TIME_WORDS: Record<string, string> = {
  s: 's', sec: 's', secs: 's', second: 's', seconds: 's',
  min: 'min', mins: 'min', minute: 'min', minutes: 'min',
  h: 'h', hr: 'h', hrs: 'h', hour: 'h', hours: 'h', hourly: 'h',
  d: 'd', day: 'd', days: 'd', daily: 'd',
  wk: 'wk', w: 'wk', week: 'wk', weeks: 'wk', weekly: 'wk',
  mo: 'mo', month: 'mo', months: 'mo', monthly: 'mo',
  a: 'a', y: 'a', yr: 'a', year: 'a', years: 'a', yearly: 'a', annually: 'a',
};
const TIME_WORD_RE = Object.keys(TIME_WORDS).sort((a, b) => b.length - a.length).join('|');

/** The UCUM code of a time unit word (day, days, d, wk ...), or undefined. */
export const timeUnitCode = (word: string): string | undefined => TIME_WORDS[word.toLowerCase()];

/** Dose units with a UCUM code (others stay a plain unit text, e.g. tablet). */
const UCUM_DOSE_UNITS: Record<string, string> = { mg: 'mg', g: 'g', mcg: 'ug', ug: 'ug', µg: 'ug', ml: 'mL', l: 'L', kg: 'kg', iu: '[iU]', meq: 'meq', mmol: 'mmol', '%': '%' };

/** Words a dose is counted in when read from free text ("take one tablet daily"). */
const DOSE_UNIT_WORDS = [
  'tablets?', 'tabs?', 'capsules?', 'caps?', 'pills?', 'puffs?', 'drops?', 'sprays?', 'patch(?:es)?', 'sachets?', 'suppositor(?:y|ies)',
  'units?', 'iu', 'mg', 'mcg', 'µg', 'ug', 'g', 'ml', 'l', 'teaspoons?', 'tsp', 'tablespoons?', 'tbsp', 'ampoules?', 'vials?', 'applications?', 'lozenges?',
].join('|');

// ---------------------------------------------------------------- dose

/** A FHIR Quantity for an amount and a unit text (UCUM system and code when the unit is one). */
export function quantityOf(value: number, unit: string): Quantity {
  if (unit === COUNT_UNIT) return { value };
  const code = UCUM_DOSE_UNITS[unit.toLowerCase()];
  return code ? { value, unit, system: UCUM, code } : { value, unit };
}

const unitOf = (q: Quantity | undefined): string | undefined => q?.unit ?? q?.code;

/** The unit of a dose given as a bare number: that many doses of the medication's form (Synthea writes doses so). */
export const COUNT_UNIT = 'dose';

/** The dose of the first doseAndRate, as "2 TAB", "1-2 TAB" or, for a bare number, "1 dose"; undefined without an amount. */
export function structuredDose(dosage: Dosage | undefined): string | undefined {
  const dr = dosage?.doseAndRate?.[0];
  const q = dr?.doseQuantity;
  if (q && typeof q.value === 'number') return `${fmt(q.value)} ${unitOf(q) ?? COUNT_UNIT}`;
  const r = dr?.doseRange;
  const low = r?.low?.value;
  const high = r?.high?.value;
  const unit = unitOf(r?.low) ?? unitOf(r?.high);
  if (typeof low === 'number' && typeof high === 'number' && unit) return `${fmt(low)}-${fmt(high)} ${unit}`;
  return undefined;
}

/** Parses a dose column value: "500 mg", "1-2 tablets", "2.5 mL". */
export function parseDose(text: string): Dose | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+)(?:\s*(?:-|–|to)\s*(\d+(?:\.\d+)?))?\s*([A-Za-z%µμ[][A-Za-z0-9%µμ/.[\]{}\- ]{0,39})$/.exec(text.trim());
  if (!m) return undefined;
  const unit = m[3]!.trim();
  return { low: Number(m[1]), ...(m[2] !== undefined ? { high: Number(m[2]) } : {}), unit };
}

export const renderDose = (d: Dose): string => `${fmt(d.low)}${d.high !== undefined ? `-${fmt(d.high)}` : ''} ${d.unit}`;

/** The doseAndRate element a dose stands for. */
export function doseAndRateOf(d: Dose): DoseAndRate {
  return d.high === undefined ? { doseQuantity: quantityOf(d.low, d.unit) } : { doseRange: { low: quantityOf(d.low, d.unit), high: quantityOf(d.high, d.unit) } };
}

/** A dose named in free text ("Take one tablet daily" -> 1 tablet). */
export function findDose(text: string | undefined): Dose | undefined {
  if (!text) return undefined;
  const m = new RegExp(`(?:^|\\s)(\\d+(?:\\.\\d+)?)(?:-(\\d+(?:\\.\\d+)?))? ?(${DOSE_UNIT_WORDS})(?=$|[\\s,.;)])`).exec(normalise(text));
  if (!m) return undefined;
  return { low: Number(m[1]), ...(m[2] !== undefined ? { high: Number(m[2]) } : {}), unit: m[3]! };
}

// ---------------------------------------------------------------- frequency

/** Timing.code abbreviations (v3 GTSAbbreviation) and the usual prescription shorthands. */
const ABBREVIATIONS: Record<string, [number, number, string]> = {
  qd: [1, 1, 'd'], od: [1, 1, 'd'], daily: [1, 1, 'd'], am: [1, 1, 'd'], pm: [1, 1, 'd'], qam: [1, 1, 'd'], qpm: [1, 1, 'd'],
  bed: [1, 1, 'd'], qhs: [1, 1, 'd'], hs: [1, 1, 'd'], nightly: [1, 1, 'd'],
  bid: [2, 1, 'd'], bd: [2, 1, 'd'], tid: [3, 1, 'd'], tds: [3, 1, 'd'], qid: [4, 1, 'd'], qds: [4, 1, 'd'],
  qod: [1, 2, 'd'], qh: [1, 1, 'h'], hourly: [1, 1, 'h'], wk: [1, 1, 'wk'], qwk: [1, 1, 'wk'], weekly: [1, 1, 'wk'],
  mo: [1, 1, 'mo'], monthly: [1, 1, 'mo'], yearly: [1, 1, 'a'], annually: [1, 1, 'a'],
};

const NUM = '\\d+(?:\\.\\d+)?';
const rangeOf = (text: string): [number, number | undefined] => {
  const [a, b] = text.split('-');
  return [Number(a), b === undefined ? undefined : Number(b)];
};

function repeatOf(frequency: [number, number | undefined], period: [number, number | undefined], unit: string): Frequency['repeat'] {
  return {
    frequency: frequency[0], ...(frequency[1] !== undefined ? { frequencyMax: frequency[1] } : {}),
    period: period[0], ...(period[1] !== undefined ? { periodMax: period[1] } : {}), periodUnit: unit,
  };
}

/**
 * Parses a frequency: "once daily", "twice a day", "3 times per week", "every 8 hours",
 * "every 4-6 hours", "every other day", "q8h", "q4-6h", "BID", "TID", "QID", "QOD", "Q6H", "daily",
 * "weekly", each optionally followed by "as needed" / "PRN".
 */
export function parseFrequency(text: string): Frequency | undefined {
  let s = normalise(text);
  let asNeeded = false;
  const prn = /(?:^|,? )(?:as needed|as required|when required|prn)$/.exec(s);
  if (prn) { asNeeded = true; s = s.slice(0, prn.index).trim(); }
  if (!s) return undefined;
  const abbr = ABBREVIATIONS[s.replace(/\./g, '')];
  if (abbr) return { repeat: repeatOf([abbr[0], undefined], [abbr[1], undefined], abbr[2]), asNeeded };
  let m = new RegExp(`^q ?(${NUM}(?:-${NUM})?) ?(${TIME_WORD_RE})$`).exec(s);
  if (m) return { repeat: repeatOf([1, undefined], rangeOf(m[1]!), TIME_WORDS[m[2]!]!), asNeeded };
  m = new RegExp(`^every(?: (other|${NUM}(?:-${NUM})?))? (${TIME_WORD_RE})$`).exec(s);
  if (m) {
    const period: [number, number | undefined] = m[1] === undefined ? [1, undefined] : m[1] === 'other' ? [2, undefined] : rangeOf(m[1]);
    return { repeat: repeatOf([1, undefined], period, TIME_WORDS[m[2]!]!), asNeeded };
  }
  m = new RegExp(`^(once|twice|thrice|(${NUM}(?:-${NUM})?) ?(?:x|times))(?: (?:a|an|per|each|every|in|a single))? ?(${NUM}(?:-${NUM})?)? ?(${TIME_WORD_RE})$`).exec(s);
  if (m) {
    const frequency: [number, number | undefined] = m[1] === 'once' ? [1, undefined] : m[1] === 'twice' ? [2, undefined] : m[1] === 'thrice' ? [3, undefined] : rangeOf(m[2]!);
    const period: [number, number | undefined] = m[3] === undefined ? [1, undefined] : rangeOf(m[3]);
    return { repeat: repeatOf(frequency, period, TIME_WORDS[m[4]!]!), asNeeded };
  }
  return undefined;
}

/** The canonical text of a frequency (what the frequency column holds). */
export function renderFrequency(f: Frequency): string {
  const r = f.repeat;
  const unit = TIME_UNITS[r.periodUnit] ?? { one: r.periodUnit, many: r.periodUnit };
  const simplePeriod = r.period === 1 && r.periodMax === undefined;
  const period = `${fmt(r.period)}${r.periodMax !== undefined ? `-${fmt(r.periodMax)}` : ''} ${unit.many}`;
  let text: string;
  if (r.frequency === 1 && r.frequencyMax === undefined) {
    if (simplePeriod) text = unit.adverb && r.periodUnit !== 'h' ? `once ${unit.adverb}` : `every ${unit.one}`;
    else text = `every ${period}`;
  } else {
    const times = r.frequencyMax !== undefined ? `${fmt(r.frequency)}-${fmt(r.frequencyMax)} times`
      : r.frequency === 2 ? 'twice' : `${fmt(r.frequency)} times`;
    text = simplePeriod ? (unit.adverb ? `${times} ${unit.adverb}` : `${times} per ${unit.one}`) : `${times} every ${period}`;
  }
  return f.asNeeded ? `${text} as needed` : text;
}

const asNeededOf = (d: Dosage): boolean => d.asNeededBoolean === true || d.asNeededCodeableConcept !== undefined;

/** The frequency a Dosage's timing states (repeat.frequency/period/periodUnit, or a Timing.code such as BID). */
export function structuredFrequency(dosage: Dosage | undefined): Frequency | undefined {
  if (!dosage) return undefined;
  const r = dosage.timing?.repeat;
  if (r && typeof r.period === 'number' && r.periodUnit) {
    return { repeat: { ...pickRepeat(r), frequency: r.frequency ?? 1, period: r.period, periodUnit: r.periodUnit }, asNeeded: asNeededOf(dosage) };
  }
  for (const c of dosage.timing?.code?.coding ?? []) {
    const abbr = c.code ? ABBREVIATIONS[c.code.toLowerCase()] : undefined;
    if (abbr && (!c.system || c.system === GTS_ABBREVIATION)) {
      return { repeat: repeatOf([abbr[0], undefined], [abbr[1], undefined], abbr[2]), asNeeded: asNeededOf(dosage) };
    }
  }
  return undefined;
}

const pickRepeat = (r: TimingRepeat): TimingRepeat => ({
  ...(r.frequencyMax !== undefined ? { frequencyMax: r.frequencyMax } : {}), ...(r.periodMax !== undefined ? { periodMax: r.periodMax } : {}),
});

/** Short abbreviations that are ordinary words in free text ("at 8 am", "in bed"): timing codes only. */
const NOT_IN_FREE_TEXT = new Set(['am', 'pm', 'bed', 'hs', 'mo', 'wk', 'od', 'bd']);

/** A frequency named in free text ("Take one tablet daily as directed" -> once daily): the first, longest phrase that parses. */
export function findFrequency(text: string | undefined): Frequency | undefined {
  if (!text) return undefined;
  const words = normalise(text).split(' ');
  for (let i = 0; i < words.length; i++) {
    for (let n = Math.min(6, words.length - i); n >= 1; n--) {
      const phrase = words.slice(i, i + n).join(' ');
      if (NOT_IN_FREE_TEXT.has(phrase)) continue;
      const f = parseFrequency(phrase);
      if (f) return f;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- duration

/** A Duration as "10 days" (UCUM time codes in words, other units as given). */
export function renderDuration(q: Quantity | undefined): string | undefined {
  if (!q || typeof q.value !== 'number') return undefined;
  const unit = q.system === UCUM && q.code && TIME_UNITS[q.code] ? (q.value === 1 ? TIME_UNITS[q.code]!.one : TIME_UNITS[q.code]!.many) : unitOf(q);
  return unit ? `${fmt(q.value)} ${unit}` : fmt(q.value);
}

/** Parses "30 days", "2 weeks", "10 d" into a Duration (UCUM when the unit is a time unit). */
export function parseDuration(text: string): Quantity | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z][A-Za-z ]{0,30})?$/.exec(text.trim());
  if (!m) return undefined;
  const value = Number(m[1]);
  const unit = m[2]?.trim();
  if (!unit) return { value };
  const code = TIME_WORDS[unit.toLowerCase()];
  return code ? { value, unit, system: UCUM, code } : { value, unit };
}
