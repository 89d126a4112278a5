/** Value checks shared by resource definitions, beyond what the JSON schema can say. Each throws 422. */
import { unprocessable } from './outcome.js';
import { utc } from './search/dates.js';

/** A FHIR date or dateTime whose day exists (the schema pattern accepts 1981-02-29). */
export function checkRealDate(value: string | undefined, expression: string): void {
  if (!value) return;
  const [y, m = '01', d = '01'] = value.slice(0, 10).split('-');
  const date = utc(Number(y), Number(m) - 1, Number(d));
  if (date.getUTCFullYear() !== Number(y) || date.getUTCMonth() !== Number(m) - 1 || date.getUTCDate() !== Number(d)) {
    throw unprocessable(`${expression} '${value}' is not a calendar date`, expression, 'value');
  }
}

/** A date that is not after today (UTC). */
export function checkNotFuture(value: string | undefined, expression: string): void {
  if (!value) return;
  if (value.slice(0, 10) > new Date().toISOString().slice(0, 10)) {
    throw unprocessable(`${expression} '${value}' is in the future`, expression, 'business-rule');
  }
}

/** A code from a closed list of values a column accepts. */
export function checkOneOf(value: unknown, allowed: readonly string[], expression: string): void {
  if (value === undefined || value === null) return;
  if (!allowed.includes(String(value))) {
    throw unprocessable(`${expression} '${String(value)}' is not one of ${allowed.join(', ')}`, expression, 'code-invalid');
  }
}

/** A period (or start/end pair) whose end is not before its start. */
export function checkPeriod(start: string | undefined, end: string | undefined, expression: string): void {
  if (!start || !end) return;
  const a = Date.parse(start.length === 10 ? `${start}T00:00:00Z` : start);
  const b = Date.parse(end.length === 10 ? `${end}T23:59:59Z` : end);
  if (!Number.isNaN(a) && !Number.isNaN(b) && b < a) {
    throw unprocessable(`${expression}: the end (${end}) is before the start (${start})`, expression, 'business-rule');
  }
}
