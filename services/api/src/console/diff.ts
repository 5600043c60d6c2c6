/**
 * A change set's files as diffs, rendered by diff2html (a maintained renderer that escapes what it shows) from a
 * unified diff jsdiff makes of each file's old and new content. One file per render, with a neutral name in the
 * patch header: a path carrying newlines or diff syntax cannot forge lines of another file.
 */
import { createTwoFilesPatch } from 'diff';
import { html as diff2html } from 'diff2html';
import type { FileChange } from '@warden/domain';
import { html, trusted, type SafeHtml } from './html.js';

/** Larger contents are summarized, not rendered: the page stays fast and the reviewer is told. */
const MAX_RENDERED_CHARS = 256 * 1024;

export interface RenderedFileDiff {
  path: string;
  operation: string;
  body: SafeHtml;
}

export function renderFileDiff(change: FileChange, index: number): RenderedFileDiff {
  const before = change.operation === 'create' ? '' : (change.old_content ?? undefined);
  const after = change.operation === 'delete' ? '' : (change.new_content ?? '');
  const note = (text: string) => html`<p class="diff-note">${text}</p>`;
  if (before === undefined && change.operation !== 'create') {
    // An update or delete guarded by old_hash only: the old text is on disk, not in the change set.
    const size = (change.new_content ?? '').length;
    if (size > MAX_RENDERED_CHARS)
      return {
        path: change.path,
        operation: change.operation,
        body: note(`new content: ${size} characters, too large to render here`),
      };
    return {
      path: change.path,
      operation: change.operation,
      body: html`${note('The change set names the old file by its hash only (old_hash): the whole new content is shown.')}${render(index, '', after)}`,
    };
  }
  if ((before ?? '').length + after.length > MAX_RENDERED_CHARS)
    return {
      path: change.path,
      operation: change.operation,
      body: note(
        `${(before ?? '').length + after.length} characters: too large to render here; review it from the API`,
      ),
    };
  return { path: change.path, operation: change.operation, body: render(index, before ?? '', after) };
}

function render(index: number, before: string, after: string): SafeHtml {
  const name = `file-${index + 1}`;
  const patch = createTwoFilesPatch(`a/${name}`, `b/${name}`, before, after, '', '', { context: 3 });
  return trusted(
    diff2html(patch, {
      drawFileList: false,
      outputFormat: 'line-by-line',
      matching: 'none',
      renderNothingWhenEmpty: false,
    }),
  );
}
