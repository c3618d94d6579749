/** The one markdown table the bench prints. */

export interface Row {
  id: string;
  measurement: string;
  n: string;
  failed: string;
  result: string;
  ratio: string;
  target: string;
  /** The same measurement on the second engine (BENCH_COMPARE_ENV); '' elsewhere. */
  cold: string;
}

const escape = (cell: string) => cell.replaceAll('|', '\\|').replaceAll('\n', ' ');

function line(cells: string[]): string {
  return `| ${cells.map(escape).join(' | ')} |`;
}

export function renderTable(rows: readonly Row[], coldHeader: string | null): string {
  const header = ['#', 'measurement', 'n', 'failed', 'result', 'ratio (same run)', 'target'];
  if (coldHeader) header.push(coldHeader);
  const out = [line(header), line(header.map(() => '---'))];
  for (const row of rows) {
    const cells = [row.id, row.measurement, row.n, row.failed, row.result, row.ratio, row.target];
    if (coldHeader) cells.push(row.cold);
    out.push(line(cells));
  }
  return out.join('\n');
}
