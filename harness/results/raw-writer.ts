// raw.csv: every sample, appended batch by batch and pushed to the kernel (and by default to disk)
// before append() returns, so Ctrl-C or a crash keeps every sample written so far.
import * as fs from 'node:fs';
import { stringify } from 'csv-stringify/sync';
import { RAW_COLUMNS, type RawRow } from './schema.js';

/** Finite numbers as JS writes them (round-trip exact); NaN/±Infinity as empty; booleans as true/false. */
export function csvText(records: readonly object[], columns: readonly string[], header: boolean): string {
  return stringify(records as Record<string, unknown>[], {
    columns: columns as string[],
    header,
    record_delimiter: 'unix',
    cast: {
      number: (v) => (Number.isFinite(v) ? String(v) : ''),
      boolean: (v) => (v ? 'true' : 'false'),
    },
  });
}

/**
 * Parse CSV as csv-stringify writes it (RFC 4180): comma separated, fields optionally quoted with
 * `"`, `""` inside quotes is a quote, quoted fields may hold commas and newlines, records end in
 * \n or \r\n. Text after the last record end (a record cut off by a kill in the middle of a
 * write) is reported in `truncated` and not returned.
 */
export function parseCsv(text: string): { records: string[][]; truncated: string | undefined } {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let inQuotes = false;
  let recordStart = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i] as string;
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        inQuotes = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      inQuotes = true;
      i++;
    } else if (ch === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (ch === '\n' || ch === '\r') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      recordStart = i;
    } else {
      field += ch;
      i++;
    }
  }
  // Every record csv-stringify writes ends in a newline, so anything after the last one was cut off.
  const rest = text.slice(recordStart);
  return { records, truncated: rest === '' ? undefined : rest };
}

export interface RawWriterOptions {
  /** fdatasync after every batch (survives power loss, not only process death); default true.
   *  Measuring runs pass false: a disk flush between calls idles the CPU and slows the next call
   *  by tens of µs; every batch is still written, so a killed process loses nothing. */
  sync?: boolean;
}

export interface RawWriter {
  readonly path: string;
  /** rows written so far by this writer */
  readonly rowsWritten: number;
  append(rows: readonly RawRow[]): void;
  close(): void;
}

/**
 * Open `file` for appending raw rows. A new (or empty) file gets the header once; an existing file
 * must already start with exactly the RAW_COLUMNS header, otherwise this throws rather than mix
 * formats.
 */
export function openRawWriter(file: string, options: RawWriterOptions = {}): RawWriter {
  const sync = options.sync ?? true;
  const header = RAW_COLUMNS.join(',');
  const fd = fs.openSync(file, 'a+');
  let rowsWritten = 0;
  let closed = false;
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0) {
      fs.writeSync(fd, header + '\n');
      if (sync) fs.fdatasyncSync(fd);
    } else {
      const head = Buffer.alloc(Math.min(size, header.length + 2));
      fs.readSync(fd, head, 0, head.length, 0);
      const firstLine = head.toString('utf8').split(/\r?\n/)[0];
      if (firstLine !== header) throw new Error(`${file} exists with a different header: ${JSON.stringify(firstLine)}`);
    }
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return {
    path: file,
    get rowsWritten() {
      return rowsWritten;
    },
    append(rows) {
      if (closed) throw new Error(`raw writer for ${file} is closed`);
      if (rows.length === 0) return;
      // a row that names no run comes from the only one
      const buf = Buffer.from(csvText(rows.map((r) => (r.run === undefined ? { ...r, run: 1 } : r)), RAW_COLUMNS, false), 'utf8');
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
      if (sync) fs.fdatasyncSync(fd);
      rowsWritten += rows.length;
    },
    close() {
      if (closed) return;
      closed = true;
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
    },
  };
}

const RAW_NUMBER_COLUMNS = new Set<string>(['iteration', 'value', 'run']);

/** Records with a header row → objects keyed by the header (all of `required` must be present). */
export function recordsToObjects(
  records: string[][],
  required: readonly string[],
  source: string,
): { header: string[]; rows: Record<string, string>[] } {
  const header = records[0];
  if (!header) throw new Error(`${source}: empty CSV (no header)`);
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length) throw new Error(`${source}: missing columns ${missing.join(', ')}`);
  const rows: Record<string, string>[] = [];
  for (let r = 1; r < records.length; r++) {
    const rec = records[r] as string[];
    if (rec.length === 1 && rec[0] === '') continue; // blank line
    if (rec.length !== header.length) {
      throw new Error(`${source}: record ${r} has ${rec.length} fields, header has ${header.length}`);
    }
    const o: Record<string, string> = {};
    header.forEach((h, k) => (o[h] = rec[k] as string));
    rows.push(o);
  }
  return { header, rows };
}

/** Empty → NaN, else Number(text). */
export function parseNumber(text: string): number {
  return text === '' ? NaN : Number(text);
}

/** Read raw.csv back. A final record cut off mid-write is dropped (everything flushed before it is kept). */
export function readRawCsv(file: string): RawRow[] {
  const { records } = parseCsv(fs.readFileSync(file, 'utf8'));
  // `run` came with --runs: a file without it is one run
  const { rows } = recordsToObjects(records, RAW_COLUMNS.filter((c) => c !== 'run'), file);
  return rows.map((o) => {
    const row = {} as Record<string, string | number>;
    for (const c of RAW_COLUMNS) row[c] = c === 'run' && o[c] === undefined ? 1 : RAW_NUMBER_COLUMNS.has(c) ? parseNumber(o[c] as string) : (o[c] as string);
    return row as unknown as RawRow;
  });
}
