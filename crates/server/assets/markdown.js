// A small Markdown renderer that builds DOM nodes, never HTML text.
//
// Supported: ATX headings, paragraphs, **bold**, *italics* and _italics_, `code`, fenced code
// blocks, ordered and unordered lists (nested by indentation), pipe tables with alignment,
// block quotes and horizontal rules. Anything else, HTML tags and [links](url) included, is shown
// as the literal text it is: every character of the input ends up in a text node, so no server
// text can inject markup or script. Links are never made: answers quote the tenant's own names
// (teams, models, features), and a team named `[Refund](link)` must stay a name.

import { h } from './dom.js';

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const TABLE_SEPARATOR = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** Renders Markdown `text` into a DocumentFragment. */
export function renderMarkdown(text) {
  const lines = String(text ?? '').replace(/\r\n?/g, '\n').split('\n');
  const fragment = document.createDocumentFragment();
  parseBlocks(lines, 0, lines.length, fragment);
  return fragment;
}

function indentOf(line) {
  let width = 0;
  for (const ch of line) {
    if (ch === ' ') width += 1;
    else if (ch === '\t') width += 4 - (width % 4);
    else break;
  }
  return width;
}

function isBlank(line) {
  return line.trim() === '';
}

function isTableStart(lines, i, end) {
  return (
    i + 1 < end &&
    lines[i].includes('|') &&
    TABLE_SEPARATOR.test(lines[i + 1]) &&
    lines[i + 1].includes('-')
  );
}

function startsBlock(lines, i, end) {
  const line = lines[i];
  return (
    FENCE.test(line) ||
    HEADING.test(line) ||
    RULE.test(line) ||
    LIST_ITEM.test(line) ||
    QUOTE.test(line) ||
    isTableStart(lines, i, end)
  );
}

function parseBlocks(lines, start, end, parent) {
  let i = start;
  while (i < end) {
    const line = lines[i];
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    if (FENCE.test(line)) {
      i = parseFence(lines, i, end, parent);
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      // The page and the run card own h1 and h2; the answer's headings sit below them.
      const level = Math.min(6, Math.max(3, heading[1].length + 1));
      parent.append(h(`h${level}`, {}, inline(heading[2])));
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      parent.append(h('hr', {}));
      i += 1;
      continue;
    }
    if (isTableStart(lines, i, end)) {
      i = parseTable(lines, i, end, parent);
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < end && QUOTE.test(lines[i])) {
        inner.push(QUOTE.exec(lines[i])[1]);
        i += 1;
      }
      const quote = h('blockquote', {});
      parseBlocks(inner, 0, inner.length, quote);
      parent.append(quote);
      continue;
    }
    if (LIST_ITEM.test(line)) {
      i = parseList(lines, i, end, parent);
      continue;
    }
    const paragraph = [line.trim()];
    i += 1;
    while (i < end && !isBlank(lines[i]) && !startsBlock(lines, i, end)) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    parent.append(h('p', {}, inline(paragraph.join(' '))));
  }
}

function parseFence(lines, i, end, parent) {
  const marker = FENCE.exec(lines[i])[1];
  const language = lines[i].trim().slice(marker.length).trim();
  const body = [];
  i += 1;
  while (i < end && !lines[i].trim().startsWith(marker)) {
    body.push(lines[i]);
    i += 1;
  }
  const code = h('code', language ? { 'data-language': language } : {}, body.join('\n'));
  parent.append(h('pre', {}, code));
  return i + 1;
}

/** Splits a table row on pipes that are neither escaped nor inside a code span. */
function splitRow(line) {
  let text = line.trim();
  if (text.startsWith('|')) text = text.slice(1);
  if (text.endsWith('|') && !text.endsWith('\\|')) text = text.slice(0, -1);
  const cells = [];
  let current = '';
  let inCode = false;
  for (let k = 0; k < text.length; k += 1) {
    const ch = text[k];
    if (ch === '\\' && text[k + 1] === '|') {
      current += '|';
      k += 1;
    } else if (ch === '`') {
      inCode = !inCode;
      current += ch;
    } else if (ch === '|' && !inCode) {
      cells.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  cells.push(current.trim());
  return cells;
}

function parseTable(lines, i, end, parent) {
  const header = splitRow(lines[i]);
  const aligns = splitRow(lines[i + 1]).map((spec) => {
    const left = spec.startsWith(':');
    const right = spec.endsWith(':');
    if (left && right) return 'center';
    if (right) return 'right';
    return null;
  });
  const cell = (tag, content, column) =>
    h(tag, aligns[column] ? { class: `align-${aligns[column]}` } : {}, inline(content));
  const head = h('thead', {}, h('tr', {}, header.map((c, k) => cell('th', c, k))));
  const body = h('tbody', {});
  i += 2;
  while (i < end && !isBlank(lines[i]) && lines[i].includes('|')) {
    const cells = splitRow(lines[i]);
    const row = h('tr', {});
    for (let k = 0; k < header.length; k += 1) row.append(cell('td', cells[k] ?? '', k));
    body.append(row);
    i += 1;
  }
  // Wide tables scroll inside their box instead of widening the page on a phone.
  parent.append(h('div', { class: 'table-wrap', tabindex: '0' }, h('table', {}, head, body)));
  return i;
}

function parseList(lines, i, end, parent) {
  const first = LIST_ITEM.exec(lines[i]);
  const baseIndent = indentOf(first[1]);
  const ordered = /\d/.test(first[2]);
  const list = h(ordered ? 'ol' : 'ul', {});
  if (ordered) {
    const startNumber = parseInt(first[2], 10);
    if (startNumber !== 1) list.setAttribute('start', String(startNumber));
  }
  let item = null;
  while (i < end) {
    const line = lines[i];
    if (isBlank(line)) {
      // A blank line ends the list unless the next line carries on with it.
      let next = i + 1;
      while (next < end && isBlank(lines[next])) next += 1;
      if (next < end && indentOf(lines[next]) >= baseIndent && LIST_ITEM.test(lines[next])) {
        i = next;
        continue;
      }
      if (next < end && item && indentOf(lines[next]) > baseIndent) {
        i = next;
        continue;
      }
      break;
    }
    const match = LIST_ITEM.exec(line);
    const indent = indentOf(line);
    if (match && indent === baseIndent) {
      if (/\d/.test(match[2]) !== ordered) break;
      item = h('li', {}, inline(match[3]));
      list.append(item);
      i += 1;
    } else if (match && indent > baseIndent && item) {
      i = parseList(lines, i, end, item);
    } else if (!match && indent > baseIndent && item) {
      item.append(' ', inline(line.trim()));
      i += 1;
    } else if (!match && item && !startsBlock(lines, i, end) && indent === baseIndent) {
      // A lazy continuation line of the item's paragraph.
      item.append(' ', inline(line.trim()));
      i += 1;
    } else {
      break;
    }
  }
  parent.append(list);
  return i;
}

function isWordChar(ch) {
  return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
}

/** Finds the closing `delimiter` for emphasis opened at `from`, or -1. */
function findClosing(text, delimiter, from) {
  let k = from;
  while (k < text.length) {
    if (text[k] === '\\') {
      k += 2;
      continue;
    }
    if (text[k] === '`') {
      const close = text.indexOf('`', k + 1);
      if (close === -1) return -1;
      k = close + 1;
      continue;
    }
    if (delimiter.length === 1 && text[k] === delimiter && text[k + 1] === delimiter) {
      // A ** inside *...* is strong text within the emphasis, not its end.
      k += 2;
      continue;
    }
    if (text.startsWith(delimiter, k)) {
      const before = text[k - 1];
      const after = text[k + delimiter.length];
      const closesAfterText = before !== undefined && !/\s/.test(before);
      // Underscores inside words (snake_case) are not emphasis.
      const wordBoundary = delimiter[0] !== '_' || !isWordChar(after);
      if (k > from && closesAfterText && wordBoundary) return k;
    }
    k += 1;
  }
  return -1;
}

/** Renders inline Markdown into an array of nodes. */
export function inline(text) {
  const nodes = [];
  let plain = '';
  const flush = () => {
    if (plain) nodes.push(document.createTextNode(plain));
    plain = '';
  };
  let k = 0;
  while (k < text.length) {
    const ch = text[k];
    if (ch === '\\' && k + 1 < text.length && /[!-/:-@[-`{-~]/.test(text[k + 1])) {
      plain += text[k + 1];
      k += 2;
      continue;
    }
    if (ch === '`') {
      let ticks = 1;
      while (text[k + ticks] === '`') ticks += 1;
      const fence = '`'.repeat(ticks);
      const close = text.indexOf(fence, k + ticks);
      if (close !== -1) {
        flush();
        nodes.push(h('code', {}, text.slice(k + ticks, close).trim()));
        k = close + ticks;
        continue;
      }
      plain += fence;
      k += ticks;
      continue;
    }
    if (ch === '*' || ch === '_') {
      const double = text[k + 1] === ch;
      const delimiter = double ? ch + ch : ch;
      const opensBeforeText = text[k + delimiter.length] !== undefined && !/\s/.test(text[k + delimiter.length]);
      const leftBoundary = ch !== '_' || !isWordChar(text[k - 1]);
      if (opensBeforeText && leftBoundary) {
        const close = findClosing(text, delimiter, k + delimiter.length);
        if (close !== -1) {
          flush();
          const inner = inline(text.slice(k + delimiter.length, close));
          nodes.push(h(double ? 'strong' : 'em', {}, inner));
          k = close + delimiter.length;
          continue;
        }
      }
      plain += delimiter;
      k += delimiter.length;
      continue;
    }
    plain += ch;
    k += 1;
  }
  flush();
  return nodes;
}
