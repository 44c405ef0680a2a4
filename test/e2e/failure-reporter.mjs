// A node:test reporter that writes only the failed tests, each with the first lines of its error,
// so that run.sh can print them after the cluster's logs: the end of the output is what a CI
// summary shows, and the spec reporter's own list of failures is far above it by then.
const MAX_LINES = 10;

export default async function* failures(source) {
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const { name, details, file, line } = event.data;
    if (details?.type === 'suite') continue;
    const err = details?.error;
    const cause = err?.cause ?? err;
    const text = String(cause?.message ?? cause ?? 'no error message');
    const lines = text.split('\n');
    const shown = lines.slice(0, MAX_LINES).map((l) => `    ${l.length > 400 ? `${l.slice(0, 400)}…` : l}`);
    if (lines.length > MAX_LINES) shown.push(`    … (${lines.length - MAX_LINES} more lines)`);
    const where = file === undefined ? '' : ` (${file.replace(/^.*\/test\/e2e\//, '')}:${line})`;
    yield `✖ ${name}${where}\n${shown.join('\n')}\n`;
  }
}
