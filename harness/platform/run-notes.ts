// Notes any part of this process leaves for the run's env.json (a file system it mounted, a daemon it
// started or reused), so the runner collects them without knowing which part wrote them.
const notes: string[] = [];

/** Adds a note once. */
export function addRunNote(s: string): void {
  if (!notes.includes(s)) notes.push(s);
}

export function runNotes(): readonly string[] {
  return notes;
}
