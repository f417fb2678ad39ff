// Where things are, from the compiled module's location (build/harness/paths.js).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const buildDir = path.join(repoRoot, 'build');
export const resultsRoot = path.join(repoRoot, 'results');
export const agentMain = path.join(buildDir, 'harness', 'platform', 'agent-main.js');
export const gatewayMain = path.join(buildDir, 'harness', 'platform', 'gateway-main.js');
