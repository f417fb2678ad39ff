// What keeps a platform process (gateway, executor, node agent) alive, and what ends it. A process
// started by a parent that must not outlive it watches its stdin (the parent's end closes when the
// parent dies, even by SIGKILL); a process reached over the network watches a connection; a service
// (systemd, nohup, </dev/null) has none and runs until it is told to stop.
import net from 'node:net';

export type LifelineSpec = { kind: 'stdin' } | { kind: 'none' } | { kind: 'connection'; endpoint: string };

/** --lifeline stdin | none | connect:<host:port or unix path>; default stdin */
export function parseLifeline(v: string | undefined): LifelineSpec {
  if (v === undefined || v === 'stdin') return { kind: 'stdin' };
  if (v === 'none') return { kind: 'none' };
  const m = /^connect:(.+)$/.exec(v);
  if (m) return { kind: 'connection', endpoint: m[1]! };
  throw new Error(`--lifeline is stdin, none or connect:<host:port|/unix/path>, not "${v}"`);
}

/** parseLifeline for an entry point: a bad value is printed and the process exits with status 2 */
export function lifelineFlagOrExit(v: string | undefined): LifelineSpec {
  try {
    return parseLifeline(v);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}

/** Calls `lost(reason)` once when the lifeline ends; returns a function that stops watching. */
export function watchLifeline(spec: LifelineSpec, lost: (reason: string) => void): () => void {
  let done = false;
  const once = (why: string) => {
    if (!done) {
      done = true;
      lost(why);
    }
  };
  if (spec.kind === 'none') return () => {};
  if (spec.kind === 'stdin') {
    const onEnd = () => once('its standard input closed (the parent that started it is gone)');
    process.stdin.on('end', onEnd);
    process.stdin.on('error', onEnd);
    process.stdin.resume();
    return () => {
      done = true;
      process.stdin.off('end', onEnd);
      process.stdin.pause();
    };
  }
  const tcp = /^(.+):(\d+)$/.exec(spec.endpoint);
  const sock = tcp ? net.connect(Number(tcp[2]), tcp[1]!) : net.connect(spec.endpoint);
  sock.on('data', () => {}); // the other end only needs to keep it open
  sock.on('error', (e) => once(`its lifeline connection to ${spec.endpoint} failed: ${e.message}`));
  sock.on('close', () => once(`its lifeline connection to ${spec.endpoint} closed`));
  return () => {
    done = true;
    sock.destroy();
  };
}
