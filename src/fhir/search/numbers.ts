/**
 * FHIR number and quantity search values: a prefix, a decimal whose written precision sets the
 * range `eq` matches, and for quantities an optional system|code unit.
 * https://hl7.org/fhir/R4/search.html#number https://hl7.org/fhir/R4/search.html#quantity
 */
import { badRequest } from '../outcome.js';
import { splitPrefix, type DatePrefix } from './dates.js';

export interface NumberValue {
  prefix: DatePrefix;
  value: number;
  /** The range the written precision implies: 100 -> [99.5, 100.5), 1.50 -> [1.495, 1.505). */
  low: number;
  high: number;
  /** Quantities: the unit asked for (absent: any unit). */
  system?: string;
  code?: string;
}

/** Larger values are refused: no stored value comes near, and doubles lose integer precision beyond it. */
const MAX_MAGNITUDE = 1e15;

const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Parses `[prefix]number` (and for quantities `|system|code` after it). */
export function parseNumberParam(raw: string, name: string, quantity: boolean): NumberValue {
  let numberPart = raw;
  let system: string | undefined;
  let code: string | undefined;
  if (quantity) {
    const parts = raw.split('|');
    if (parts.length !== 1 && parts.length !== 3) throw badRequest(`Invalid quantity '${raw}' for ${name}: use [prefix]number or [prefix]number|system|code`);
    numberPart = parts[0]!;
    system = parts[1] || undefined;
    code = parts[2] || undefined;
  }
  const { prefix, value: text } = splitPrefix(numberPart);
  if (!DECIMAL_RE.test(text)) throw badRequest(`Invalid number '${numberPart}' for ${name}`);
  const value = Number(text);
  const mantissa = text.replace(/^[+-]/, '').split(/[eE]/)[0]!;
  const exponent = Number(text.split(/[eE]/)[1] ?? 0);
  const decimals = (mantissa.split('.')[1] ?? '').length - exponent;
  const half = 0.5 * 10 ** -decimals;
  if (!Number.isFinite(value) || !Number.isFinite(half) || Math.abs(value) > MAX_MAGNITUDE) {
    throw badRequest(`Number '${numberPart}' for ${name} is out of range (at most ${MAX_MAGNITUDE} in magnitude)`);
  }
  return { prefix, value, low: value - half, high: value + half, system, code };
}
