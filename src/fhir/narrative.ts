/**
 * The rules of FHIR narrative XHTML (Narrative.div), which the R4 JSON schema leaves as "any
 * value": https://hl7.org/fhir/R4/narrative.html#xhtml. A div must be one well-formed XHTML
 * <div> in the XHTML namespace with some content (txt-2), holding only the basic formatting
 * elements and attributes of HTML 4.0 (txt-1): no script, style sheets, forms, frames, objects or
 * event attributes, and no javascript: (or other active) URLs. Stored narrative is shown to users
 * by EHR viewers, so this is also what keeps script out of them.
 */

import { forbiddenCharacter } from '../characters.js';

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements of HTML 4.0 chapters 7-11 and 15 (less 9.4), plus a and img, as the FHIR validators list them. */
const ELEMENTS = new Set([
  'a', 'abbr', 'acronym', 'address', 'area', 'b', 'bdo', 'big', 'blockquote', 'br', 'caption', 'cite', 'code', 'col',
  'colgroup', 'dd', 'dfn', 'div', 'dl', 'dt', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'kbd', 'li',
  'map', 'ol', 'p', 'pre', 'q', 'samp', 'small', 'span', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot', 'th',
  'thead', 'tr', 'tt', 'ul', 'var',
]);

/** Attributes of those elements (presentation, tables, links, images); no event handlers (on*). */
const ATTRIBUTES = new Set([
  'abbr', 'accesskey', 'align', 'alt', 'axis', 'bgcolor', 'border', 'cellpadding', 'cellspacing', 'char', 'charoff',
  'cite', 'class', 'colspan', 'compact', 'coords', 'datetime', 'dir', 'frame', 'headers', 'height', 'href', 'hreflang',
  'id', 'ismap', 'lang', 'longdesc', 'name', 'nohref', 'rel', 'rev', 'rowspan', 'rules', 'scope', 'shape', 'span', 'src',
  'start', 'style', 'summary', 'tabindex', 'title', 'type', 'usemap', 'valign', 'value', 'width', 'xml:lang', 'xmlns',
]);

/** URL schemes a link or image may use; anything else (javascript:, vbscript:, data: outside images) is refused. */
const SAFE_URL = /^(?:https?:|mailto:|tel:|urn:|#|\/|\.{0,2}\/|[^:/?#]*(?:[/?#]|$))/i;
const IMAGE_DATA = /^data:image\/(?:png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*$/i;

const NAME = /^[A-Za-z][A-Za-z0-9]*(?::[A-Za-z][A-Za-z0-9]*)?$/;
const ENTITY = /&(?:#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});/y;
const ATTRIBUTE = /\s+([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;

/** Why a narrative div breaks the rules, or undefined when it keeps them. */
export function narrativeProblem(div: string): string | undefined {
  const stack: string[] = [];
  let text = false;
  let image = false;
  let root = false;
  let i = 0;
  while (i < div.length) {
    const lt = div.indexOf('<', i);
    const chunk = div.slice(i, lt < 0 ? div.length : lt);
    const bad = textProblem(chunk);
    if (bad) return bad;
    if (/\S/.test(chunk)) {
      if (stack.length === 0) return 'text outside the root <div>';
      text = true;
    }
    if (lt < 0) break;
    if (div.startsWith('<!--', lt)) {
      const end = div.indexOf('-->', lt + 4);
      if (end < 0) return 'an unterminated comment';
      i = end + 3;
      continue;
    }
    if (div.startsWith('</', lt)) {
      const end = div.indexOf('>', lt);
      const name = end < 0 ? '' : div.slice(lt + 2, end).trim();
      if (stack.pop() !== name) return `a closing </${name.slice(0, 20)}> that does not match its opening element`;
      i = end + 1;
      if (stack.length === 0 && /\S/.test(div.slice(i))) return 'content after the root </div>';
      continue;
    }
    const tag = parseTag(div, lt);
    if (typeof tag === 'string') return tag;
    if (!root) {
      if (tag.name !== 'div') return 'the root element must be a <div>';
      if (tag.attributes.get('xmlns') !== XHTML_NS) return `the root <div> must declare xmlns="${XHTML_NS}"`;
      root = true;
    } else if (stack.length === 0) return 'a second root element (one <div> holds all the narrative)';
    if (!ELEMENTS.has(tag.name)) return `the element <${tag.name}> is not allowed in narrative`;
    for (const [name, value] of tag.attributes) {
      if (!ATTRIBUTES.has(name)) return `the attribute ${name} is not allowed in narrative`;
      if (name === 'xmlns' && value !== XHTML_NS) return 'an element outside the XHTML namespace';
      if ((name === 'href' || name === 'src' || name === 'cite' || name === 'longdesc') && !safeUrl(name, value)) return `an unsafe URL in ${name}`;
      if (name === 'style' && /expression\(|url\(|@import|javascript:|behavior:/i.test(decoded(value))) return 'a style attribute that loads or runs something';
    }
    if (tag.name === 'img') image = true;
    if (!tag.selfClosing) stack.push(tag.name);
    else if (stack.length === 0) return 'an empty root <div/>';
    i = tag.end;
  }
  if (!root) return 'no root <div>';
  if (stack.length) return `<${stack[stack.length - 1]}> is not closed`;
  if (!text && !image) return 'no content (narrative must have some text or an image)';
  return undefined;
}

/** A problem in character data: a bare & that is no entity, or a character XML cannot carry. */
function textProblem(chunk: string): string | undefined {
  for (let j = chunk.indexOf('&'); j >= 0; j = chunk.indexOf('&', j + 1)) {
    ENTITY.lastIndex = j;
    if (!ENTITY.test(chunk)) return 'a bare & (write &amp;)';
  }
  if (forbiddenCharacter(chunk) !== undefined || /[\uFFFE\uFFFF]/.test(chunk)) return 'a character XML cannot carry';
  return undefined;
}

interface Tag { name: string; attributes: Map<string, string>; selfClosing: boolean; end: number }

/** Parses the start tag at `lt`: its name, attributes (quoted values, no duplicates) and end. */
function parseTag(div: string, lt: number): Tag | string {
  if (div.startsWith('<!', lt) || div.startsWith('<?', lt)) return 'a declaration, CDATA section or processing instruction';
  const m = /^<([^\s/>]+)/.exec(div.slice(lt, lt + 40));
  const name = m?.[1] ?? '';
  if (!NAME.test(name)) return 'a malformed tag';
  const attributes = new Map<string, string>();
  let j = lt + 1 + name.length;
  for (;;) {
    ATTRIBUTE.lastIndex = j;
    const a = ATTRIBUTE.exec(div);
    if (!a) break;
    const value = a[2] ?? a[3] ?? '';
    if (attributes.has(a[1]!)) return `the attribute ${a[1]} twice on one element`;
    const bad = textProblem(value);
    if (bad) return bad;
    attributes.set(a[1]!, value);
    j = ATTRIBUTE.lastIndex;
  }
  const close = /^\s*(\/?)>/.exec(div.slice(j, j + 64));
  if (!close) return `a malformed <${name}> tag (attributes must be name="value")`;
  return { name, attributes, selfClosing: close[1] === '/', end: j + close[0].length };
}

/** An attribute value as a browser reads it: character references decoded, whitespace and controls gone. */
function decoded(value: string): string {
  return value
    .replace(/&#x([0-9a-f]+);?/gi, (_, h: string) => String.fromCodePoint(Math.min(parseInt(h, 16), 0x10ffff)))
    .replace(/&#([0-9]+);?/g, (_, d: string) => String.fromCodePoint(Math.min(parseInt(d, 10), 0x10ffff)))
    .replace(/&colon;/gi, ':').replace(/&(?:tab|newline);/gi, '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\s\u0000-\u001F]/g, '');
}

/** Whether a link or image URL is passive: http(s), mailto, tel, urn, relative or fragment; a data: image for src. */
function safeUrl(attribute: string, value: string): boolean {
  const url = decoded(value);
  if (attribute === 'src' && IMAGE_DATA.test(url)) return true;
  return SAFE_URL.test(url) && !/^(?:javascript|vbscript|data|file):/i.test(url);
}
