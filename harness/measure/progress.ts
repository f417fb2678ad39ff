// Progress on stderr: a redrawn single-line bar on a TTY, sparse plain lines otherwise (CI, logs).

export interface ProgressOptions {
  label: string;
  total: number;
  /** default process.stderr */
  stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** force plain-line mode (default: not a TTY, or CI=true) */
  plain?: boolean;
  /** minimum ms between plain lines; default 5000 */
  plainIntervalMs?: number;
  /** injectable clock (ms) for tests; default Date.now */
  clock?: () => number;
}

export interface Progress {
  /** n units done (default 1) */
  tick(n?: number): void;
  /** a message on its own line, without losing the bar */
  note(msg: string): void;
  /** final line; idempotent */
  done(): void;
}

const REDRAW_MS = 100;

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function progress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  const clock = options.clock ?? Date.now;
  const plain = options.plain ?? (!stream.isTTY || process.env['CI'] === 'true');
  const interval = options.plainIntervalMs ?? 5000;
  const { label, total } = options;
  const started = clock();
  let count = 0;
  let lastDraw = -Infinity;
  let finished = false;
  let barShown = false;

  const status = (): string => {
    const elapsed = clock() - started;
    const pct = total > 0 ? Math.min(100, (100 * count) / total) : 100;
    const eta = count > 0 && total > count ? ((total - count) * elapsed) / count : total <= count ? 0 : NaN;
    return `${count}/${total} (${pct.toFixed(0)}%) elapsed ${formatDuration(elapsed)} eta ${formatDuration(eta)}`;
  };

  const drawBar = (): void => {
    const text = status();
    const cols = stream.columns ?? 80;
    const room = Math.max(10, cols - label.length - text.length - 6);
    const filled = total > 0 ? Math.round((room * Math.min(count, total)) / total) : room;
    stream.write(`\r\x1b[2K${label} [${'#'.repeat(filled)}${'.'.repeat(room - filled)}] ${text}`);
    barShown = true;
  };

  if (plain) stream.write(`${label}: start, ${total} to do\n`);
  else drawBar();
  lastDraw = clock();

  return {
    tick(n = 1) {
      if (finished) return;
      count += n;
      const t = clock();
      if (plain) {
        if (t - lastDraw >= interval) {
          stream.write(`${label}: ${status()}\n`);
          lastDraw = t;
        }
      } else if (t - lastDraw >= REDRAW_MS || count >= total) {
        drawBar();
        lastDraw = t;
      }
    },
    note(msg: string) {
      if (plain) {
        stream.write(`${label}: ${msg}\n`);
      } else {
        stream.write(`\r\x1b[2K${msg}\n`);
        if (!finished) drawBar();
      }
    },
    done() {
      if (finished) return;
      finished = true;
      if (plain) stream.write(`${label}: done, ${status()}\n`);
      else {
        drawBar();
        if (barShown) stream.write('\n');
      }
    },
  };
}
