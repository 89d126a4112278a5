/**
 * Counts the rows of each table in a mariadb-dump stream as it passes (the manifest's row counts,
 * which `hms backup verify` compares with the restored database): the tuples of each
 * `INSERT INTO \`t\` VALUES (...),(...);` statement, on one line or one tuple per line as
 * MariaDB 10.11 writes them, read with the dump's own quoting (strings in single quotes with
 * backslash escapes, blobs as hex), so a parenthesis or semicolon inside a value is not a row.
 * Also picks up the binlog position that --master-data=2 writes as a comment.
 */
import { Transform } from 'node:stream';

// a column list comes with INVISIBLE columns: INSERT INTO `t` (`a`, `b`) VALUES
const INSERT = /^INSERT (?:IGNORE )?INTO `([^`]+)`(?: \(.*\))? VALUES/;
const CHANGE_MASTER = /^(?:-- )?CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)/;
/** Enough of a line to see what it starts: an INSERT's head or the CHANGE MASTER comment. */
const HEAD_BYTES = 400;

export class DumpRowCounter extends Transform {
  readonly counts = new Map<string, number>();
  /** The binlog position of the dump's snapshot. */
  binlog?: { file: string; position: number };
  /** The table whose VALUES are being read, or undefined between statements. */
  private table: string | undefined;
  private rows = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private head = '';

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.table !== undefined) {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (c === 0x5c) this.escaped = true; // backslash
          else if (c === 0x27) this.inString = false; // '
        } else if (c === 0x27) this.inString = true;
        else if (c === 0x28) { if (this.depth++ === 0) this.rows++; } // (
        else if (c === 0x29) this.depth--; // )
        else if (c === 0x3b && this.depth === 0) this.endStatement(); // ;
        continue;
      }
      if (c === 0x0a) { this.endLine(); continue; }
      if (this.head.length < HEAD_BYTES) {
        this.head += String.fromCharCode(c);
        // "VALUES" complete: the tuples follow, on this line or the next ones
        if (c === 0x53 && this.head.startsWith('INSERT ')) {
          const m = INSERT.exec(this.head);
          if (m) { this.table = m[1]!; this.rows = 0; this.depth = 0; this.head = ''; }
        }
      }
    }
    done(null, chunk);
  }

  override _flush(done: (err?: Error | null) => void): void {
    if (this.table !== undefined) this.endStatement();
    done();
  }

  private endStatement(): void {
    this.counts.set(this.table!, (this.counts.get(this.table!) ?? 0) + this.rows);
    this.table = undefined;
    this.head = '';
  }

  private endLine(): void {
    // every table is counted, the empty ones as 0
    const created = this.head.startsWith('CREATE TABLE `') ? /^CREATE TABLE `([^`]+)`/.exec(this.head) : null;
    if (created && !this.counts.has(created[1]!)) this.counts.set(created[1]!, 0);
    if (!this.binlog && this.head.includes('CHANGE MASTER TO')) {
      const m = CHANGE_MASTER.exec(this.head);
      if (m) this.binlog = { file: m[1]!, position: Number(m[2]) };
    }
    this.head = '';
  }
}
