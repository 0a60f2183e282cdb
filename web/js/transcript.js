// The transcript of the open session: its entries (main agent and subagents) in pages of TRANSCRIPT_PAGE, text as
// it is (long text folded), tool_use and tool_result blocks summarized on one line.
import { agentColor } from './colors.js';
import { dom, el } from './dom.js';
import { clip, jsonText } from './format.js';

const TRANSCRIPT_PAGE = 200;
const TEXT_MAX = 4000;

// The entries of the session shown, and how many of them are in the DOM.
let entries = [];
let shown = 0;

// Another session opened: nothing to show until its transcript loads.
export function resetTranscript() {
  entries = [];
  shown = 0;
}

// `list`: the `entries` of the session's transcript, as the sessions API gives them.
export function renderTranscript(list) {
  entries = list;
  const agents = new Set(entries.map((e) => e.agent_id));
  dom.transcriptInfo.textContent = entries.length
    ? `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} · ${agents.size} agent${agents.size === 1 ? '' : 's'}`
    : '';
  if (!entries.length) {
    dom.transcript.replaceChildren(el('div', 'empty-note', 'no transcript stored for this session'));
    shown = 0;
    return;
  }
  shown = 0;
  dom.transcript.replaceChildren();
  appendTranscript(TRANSCRIPT_PAGE);
}

function appendTranscript(count) {
  const old = dom.transcript.querySelector('.more-button');
  if (old) old.remove();
  const frag = document.createDocumentFragment();
  const end = Math.min(entries.length, shown + count);
  for (let i = shown; i < end; i++) frag.append(renderEntry(entries[i]));
  shown = end;
  if (end < entries.length) {
    const more = el('button', 'more-button', `show ${Math.min(TRANSCRIPT_PAGE, entries.length - end)} more of ${entries.length - end}`);
    more.type = 'button';
    more.addEventListener('click', () => appendTranscript(TRANSCRIPT_PAGE));
    frag.append(more);
  }
  dom.transcript.append(frag);
}

function renderEntry(entry) {
  const node = el('div', 'entry');
  node.dataset.role = entry.role;
  node.dataset.agent = entry.agent_id;
  const head = el('div', 'entry-head');
  head.append(el('span', 'role', entry.role));
  if (entry.agent_id && entry.agent_id !== 'main') {
    const a = el('span', null, `agent ${clip(entry.agent_id, 14)}`);
    a.style.color = agentColor(entry.agent_id);
    head.append(a);
  }
  if (entry.model) head.append(el('span', null, entry.model));
  if (entry.input_tokens || entry.output_tokens) {
    head.append(el('span', null, `${entry.input_tokens ?? 0} in / ${entry.output_tokens ?? 0} out`));
  }
  if (entry.created_at) head.append(el('span', null, new Date(entry.created_at).toLocaleTimeString()));
  node.append(head);
  for (const block of contentBlocks(entry.content)) node.append(block);
  return node;
}

function textBlock(text, cls) {
  text = String(text);
  if (text.length <= TEXT_MAX) return el('div', `block ${cls}`, text);
  const details = el('details', `block ${cls}`);
  details.append(el('summary', null, `${clip(text, 300)} (${text.length.toLocaleString()} characters)`));
  details.append(document.createTextNode(text.slice(0, 100000)));
  return details;
}

function summarizeInput(input) {
  if (!input || typeof input !== 'object') return input === undefined ? '' : jsonText(input);
  const main = input.command ?? input.file_path ?? input.pattern ?? input.url ?? input.description ?? input.prompt;
  return clip(main !== undefined ? jsonText(main) : jsonText(input), 300);
}

function resultText(content) {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((b) => (b && b.type === 'text' ? b.text : b && b.type ? `[${b.type}]` : jsonText(b))).join('\n');
  }
  return content === undefined || content === null ? '' : jsonText(content);
}

function contentBlocks(content) {
  if (typeof content === 'string') return [textBlock(content, 'text')];
  if (Array.isArray(content)) {
    const out = [];
    for (const b of content) {
      if (!b || typeof b !== 'object') {
        out.push(textBlock(jsonText(b), 'text'));
        continue;
      }
      switch (b.type) {
        case 'text':
          out.push(textBlock(b.text ?? '', 'text'));
          break;
        case 'tool_use':
          out.push(el('div', 'block tool-use', `→ ${b.name || 'tool'}: ${summarizeInput(b.input)}`));
          break;
        case 'tool_result': {
          const text = resultText(b.content);
          const node = el('div', 'block tool-result', `← ${b.is_error ? 'error' : 'result'}: ${clip(text, 400)}`);
          if (b.is_error) node.classList.add('error');
          node.title = clip(text, 4000);
          out.push(node);
          break;
        }
        case 'thinking':
        case 'redacted_thinking': {
          const d = el('details', 'block meta');
          d.append(el('summary', null, 'thinking'));
          d.append(document.createTextNode(clip(b.thinking ?? '', 20000)));
          out.push(d);
          break;
        }
        case 'image':
          out.push(el('div', 'block meta', '[image]'));
          break;
        default:
          out.push(el('div', 'block meta', `[${b.type || 'block'}] ${clip(jsonText(b), 200)}`));
      }
    }
    return out;
  }
  if (content && typeof content === 'object') {
    // A transcript line without message content (an attachment, a system note): what kind it is.
    const a = content.attachment;
    if (a && typeof a === 'object') return [el('div', 'block meta', `attachment: ${a.type || 'unknown'}`)];
    if (typeof content.content === 'string') return [textBlock(content.content, 'meta')];
    const kind = [content.type, content.subtype].filter(Boolean).join(' ');
    return [el('div', 'block meta', clip(kind || jsonText(content), 300))];
  }
  return [el('div', 'block meta', content === undefined || content === null ? '' : String(content))];
}
