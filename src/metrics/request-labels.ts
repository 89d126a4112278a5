/**
 * The labels of a request in the metrics: the FHIR interaction (as the CapabilityStatement names
 * them) and the resource type, read off the route's template, never off the URL. A template holds
 * no id and no search value, and there are finitely many of them, so neither can a label.
 */

export interface RequestLabels {
  /** read, vread, update, patch, delete, history-instance, history-type, history-system, create, search-type, transaction, capabilities, operation:$name ... or the route's template outside /fhir. */
  interaction: string;
  /** The FHIR resource type, or '' when the route has none. */
  type: string;
}

const FHIR_ROUTE = /^\/fhir(?:\/([A-Z][A-Za-z]+))?((?:\/[^/]+)*)$/;

function fhirInteraction(method: string, type: string | undefined, rest: string): string {
  const op = /\/(\$[a-z-]+)/i.exec(rest)?.[1];
  if (op) return `operation:${op}`;
  if (rest.endsWith('/_history/:vid')) return 'vread';
  if (rest === '/:id/_history') return 'history-instance';
  if (rest === '/_history') return type ? 'history-type' : 'history-system';
  if (rest === '/_search') return 'search-type';
  if (rest === '/:id') return ({ GET: 'read', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[method] ?? method.toLowerCase();
  if (rest === '' && type) return ({ GET: 'search-type', POST: 'create', PUT: 'conditional-update', DELETE: 'conditional-delete' } as Record<string, string>)[method] ?? method.toLowerCase();
  if (rest === '' && !type && method === 'POST') return 'batch-transaction';
  return method.toLowerCase();
}

const UNMATCHED: RequestLabels = { interaction: 'unmatched', type: '' };
/** Per method and template, worked out once: the metrics and the request log ask for every request. */
const known = new Map<string, RequestLabels>();

/** The labels of a request to the route with this template (undefined: no route matched). */
export function requestLabels(method: string, template: string | undefined): RequestLabels {
  if (!template) return UNMATCHED;
  const key = `${method} ${template}`;
  let labels = known.get(key);
  if (!labels) known.set(key, (labels = labelsOf(method, template)));
  return labels;
}

function labelsOf(method: string, template: string): RequestLabels {
  if (template === '/fhir/metadata') return { interaction: 'capabilities', type: '' };
  const m = FHIR_ROUTE.exec(template);
  if (!m) return { interaction: template, type: '' };
  return { interaction: fhirInteraction(method, m[1], m[2] ?? ''), type: m[1] ?? '' };
}
