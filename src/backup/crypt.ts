/**
 * Encryption at rest of backup and audit archive files with the operator's keys
 * (HMS_BACKUP_KEYS): AES-256-GCM, a file being MAGIC, the key's id (8 bytes), a 12-byte IV, the
 * ciphertext, then the 16-byte tag. The first key encrypts; every listed key decrypts, found by
 * the id in the file (the first 16 hex digits of the key's SHA-256), so a new key is put first and
 * the old one kept until the last file made with it has aged out (docs/backup.md, key rotation).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';

const MAGIC = Buffer.from('HMSENC1\n');
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface BackupKey { id: string; key: Buffer }

/** The keys of HMS_BACKUP_KEYS: comma-separated, each 32 bytes as base64 or 64 hex digits. */
export function parseBackupKeys(value: string | undefined): BackupKey[] {
  if (!value) return [];
  return value.split(',').map((s) => s.trim()).filter(Boolean).map((s, i) => {
    const key = /^[0-9a-f]{64}$/i.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
    if (key.length !== 32) throw new Error(`HMS_BACKUP_KEYS: key ${i + 1} is not 32 bytes (base64, or 64 hex digits; make one with \`openssl rand -base64 32\`)`);
    return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
  });
}

/** A stream that encrypts what passes through it: header first, the tag when it ends. */
export function encryptStream(key: BackupKey): Transform {
  const iv = randomBytes(IV_BYTES);
  const cipher: CipherGCM = createCipheriv('aes-256-gcm', key.key, iv);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (!started) { started = true; this.push(Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), iv])); }
      done(null, cipher.update(chunk));
    },
    flush(done) {
      if (!started) this.push(Buffer.concat([MAGIC, Buffer.from(key.id, 'hex'), iv]));
      this.push(cipher.final());
      done(null, cipher.getAuthTag());
    },
  });
}

/** Whether a file is one of these (it starts with MAGIC). */
export async function isEncryptedFile(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(MAGIC.length);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return bytesRead === MAGIC.length && head.equals(MAGIC);
  } finally {
    await fh.close();
  }
}

/**
 * The plaintext of an encrypted file, as a stream; it errors at its end if the file was altered or
 * the key is wrong. The key is the one whose id the file names (and, given, the manifest too).
 */
export async function decryptFile(path: string, keys: BackupKey[], expectedKeyId?: string): Promise<Readable> {
  const fh = await open(path, 'r');
  let size: number;
  const head = Buffer.alloc(MAGIC.length + KEY_ID_BYTES + IV_BYTES);
  const tag = Buffer.alloc(TAG_BYTES);
  try {
    size = (await fh.stat()).size;
    if (size < head.length + TAG_BYTES) throw new Error(`${path} is too short to be an encrypted file`);
    await fh.read(head, 0, head.length, 0);
    await fh.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
  } finally {
    await fh.close();
  }
  if (!head.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error(`${path} is not an HMS encrypted file`);
  const keyId = head.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES).toString('hex');
  if (expectedKeyId && keyId !== expectedKeyId) throw new Error(`${path} names key ${keyId}, its manifest ${expectedKeyId}`);
  const key = keys.find((k) => k.id === keyId);
  if (!key) throw new Error(`${path} was encrypted with key ${keyId}, which HMS_BACKUP_KEYS does not hold`);
  const decipher: DecipherGCM = createDecipheriv('aes-256-gcm', key.key, head.subarray(MAGIC.length + KEY_ID_BYTES));
  decipher.setAuthTag(tag);
  const body = createReadStream(path, { start: head.length, end: size - TAG_BYTES - 1 });
  body.on('error', (err) => decipher.destroy(err));
  return body.pipe(decipher);
}
