// A `FROM scratch` image holding one function's static binary as /fx, written as one tar that both
// `docker load` (manifest.json) and `ctr images import` (OCI index.json) read: no registry, no build
// daemon, the same bytes for Docker and containerd. Layer uncompressed, so diff_id = layer digest.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** bump when the image's layout or config changes */
const IMAGE_VERSION = 1;

export interface ImageSpec {
  /** function name (the image's repository name: fxh/<name>) */
  name: string;
  binary: string;
  env: string[];
}

export interface ImageTar {
  /** the image reference the tar tags, e.g. docker.io/fxh/noop:<tag> */
  ref: string;
  /** short form Docker shows, fxh/noop:<tag> */
  shortRef: string;
  path: string;
  /** sha256:<hex> of the image config (Docker's image id) */
  configDigest: string;
  /** true when this call wrote it */
  built: boolean;
}

/** One ustar entry: header + data padded to 512 bytes. */
function tarEntry(name: string, data: Buffer, mode: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(512);
  if (Buffer.byteLength(name) > 99) throw new Error(`tar name too long: ${name}`);
  h.write(name, 0, 'utf8');
  const oct = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';
  h.write(oct(mode, 8), 100);
  h.write(oct(0, 8), 108); // uid
  h.write(oct(0, 8), 116); // gid
  h.write(oct(type === '5' ? 0 : data.length, 12), 124);
  h.write(oct(0, 12), 136); // mtime 0: the same binary gives the same digest
  h.write('        ', 148); // checksum placeholder
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad]);
}

export function tarOf(entries: { name: string; data?: Buffer; mode?: number; dir?: boolean }[]): Buffer {
  const parts = entries.map((e) => tarEntry(e.name, e.data ?? Buffer.alloc(0), e.mode ?? (e.dir ? 0o755 : 0o644), e.dir ? '5' : '0'));
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Writes (or reuses) <dir>/<name>.tar for `spec`; the tag is a digest of the binary and settings. */
export function ensureImageTar(dir: string, spec: ImageSpec): ImageTar {
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(spec.name)) throw new Error(`bad image name ${JSON.stringify(spec.name)} (lower-case letters, digits, _ . -)`);
  const st = statSync(spec.binary);
  const tag = sha(Buffer.from(JSON.stringify({ v: IMAGE_VERSION, b: spec.binary, ino: st.ino, size: st.size, m: st.mtimeMs, env: spec.env }))).slice(0, 16);
  const shortRef = `fxh/${spec.name}:${tag}`;
  const ref = `docker.io/${shortRef}`;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${spec.name}-${tag}.tar`);
  const idFile = `${path}.config`;
  if (existsSync(path) && existsSync(idFile)) return { ref, shortRef, path, configDigest: readFileSync(idFile, 'utf8'), built: false };

  const layer = tarOf([{ name: 'fx', data: readFileSync(spec.binary), mode: 0o755 }, ...['proc', 'dev', 'sys', 'tmp'].map((d) => ({ name: `${d}/`, dir: true }))]);
  const layerHex = sha(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: { Entrypoint: ['/fx'], Env: ['PATH=/', ...spec.env], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: `fxh: static ${spec.name} binary as /fx` }],
    }),
  );
  const configHex = sha(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configHex}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerHex}`, size: layer.length }],
    }),
  );
  const manifestHex = sha(manifest);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${manifestHex}`,
          size: manifest.length,
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  // Docker's loader reads manifest.json; containerd's importer prefers index.json
  const dockerManifest = Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${configHex}`, RepoTags: [shortRef], Layers: [`blobs/sha256/${layerHex}`] }]));
  const tar = tarOf([
    { name: 'blobs/', dir: true },
    { name: 'blobs/sha256/', dir: true },
    { name: `blobs/sha256/${layerHex}`, data: layer },
    { name: `blobs/sha256/${configHex}`, data: config },
    { name: `blobs/sha256/${manifestHex}`, data: manifest },
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', data: index },
    { name: 'manifest.json', data: dockerManifest },
  ]);
  writeFileSync(path, tar);
  writeFileSync(idFile, `sha256:${configHex}`);
  return { ref, shortRef, path, configDigest: `sha256:${configHex}`, built: true };
}
