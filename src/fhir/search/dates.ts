/** FHIR date search values as half-open UTC ranges. https://hl7.org/fhir/R4/search.html#date */
import { badRequest } from '../outcome.js';

export type DatePrefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
export const DATE_PREFIXES: DatePrefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export interface DateRange {
  prefix: DatePrefix;
  /** Inclusive start, exclusive end, in UTC. */
  start: Date;
  end: Date;
}

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-](?:0\d|1[0-3]):[0-5]\d|[+-]14:00)?)?)?)?$/;

/** A UTC midnight; unlike Date.UTC it does not read years 0-99 as 1900-1999. */
export function utc(year: number, monthIndex: number, day: number): Date {
  const d = new Date(Date.UTC(2000, monthIndex, day));
  d.setUTCFullYear(year, monthIndex, day);
  return d;
}

/** Splits an optional two-letter prefix from a search value. */
export function splitPrefix(raw: string): { prefix: DatePrefix; value: string } {
  const p = raw.slice(0, 2) as DatePrefix;
  if (DATE_PREFIXES.includes(p) && /^[a-z]{2}[-+.\d]/.test(raw)) return { prefix: p, value: raw.slice(2) };
  return { prefix: 'eq', value: raw };
}

/** Parses a date search value (with prefix) into the range its precision implies. */
export function parseDateParam(raw: string, name: string): DateRange {
  const { prefix, value } = splitPrefix(raw);
  const m = DATE_RE.exec(value);
  if (!m) throw badRequest(`Invalid date '${raw}' for search parameter ${name}: expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss][Z|+hh:mm]]]]`);
  const [, y, mo, d, hh, mi, ss, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : 1;
  const day = d ? Number(d) : 1;
  if (month < 1 || month > 12 || day < 1 || day > utc(year, month, 0).getUTCDate()) {
    throw badRequest(`Invalid date '${raw}' for search parameter ${name}: no such day`);
  }
  let start: Date;
  let end: Date;
  if (hh !== undefined) {
    if (Number(hh) > 23 || Number(mi) > 59 || Number(ss ?? 0) > 59) throw badRequest(`Invalid time in '${raw}' for search parameter ${name}`);
    const iso = `${y}-${mo}-${d}T${hh}:${mi}:${ss ?? '00'}${frac ?? ''}${tz ?? 'Z'}`;
    start = new Date(iso);
    if (Number.isNaN(start.getTime())) throw badRequest(`Invalid date '${raw}' for search parameter ${name}`);
    const stepMs = ss === undefined ? 60_000 : frac ? 1 : 1000;
    if (frac) start = new Date(Math.floor(start.getTime()));
    end = new Date(start.getTime() + stepMs);
  } else if (d) {
    start = utc(year, month - 1, day);
    end = utc(year, month - 1, day + 1);
  } else if (mo) {
    start = utc(year, month - 1, 1);
    end = utc(year, month, 1);
  } else {
    start = utc(year, 0, 1);
    end = utc(year + 1, 0, 1);
  }
  return { prefix, start, end };
}

/** The range 'ap' (approximately) covers: the value widened by 10% of its distance from now, at least a day. */
export function approximate(range: DateRange, now = new Date()): { start: Date; end: Date } {
  const distance = Math.abs(now.getTime() - range.start.getTime());
  const widen = Math.max(distance * 0.1, 86_400_000);
  return { start: new Date(range.start.getTime() - widen), end: new Date(range.end.getTime() + widen) };
}
