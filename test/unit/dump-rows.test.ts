/**
 * The dump row counter against what mariadb-dump writes: one tuple per line (10.11) or many on
 * one line, values with parentheses, semicolons, quotes and backslashes inside strings, hex and
 * _binary blobs, NULL, column lists (INVISIBLE columns), INSERT IGNORE, empty tables, the
 * --master-data comment, and chunks split anywhere.
 */
import t from 'tap';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DumpRowCounter } from '../../src/backup/dump-rows.js';

const DUMP = [
  "-- MariaDB dump 10.19",
  "-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000007', MASTER_LOG_POS=4242;",
  'CREATE TABLE `empty_one` (', '  `id` int NOT NULL', ') ENGINE=InnoDB;',
  'CREATE TABLE `notes` (', '  `id` int NOT NULL', ');',
  'INSERT INTO `notes` VALUES',
  "(1,'a (paren) and; semicolon',NULL),",
  "(2,'it\\'s \\\\ a backslash ) (',0x28293B),",
  "(3,_binary 'x(y);',NULL);",
  "INSERT INTO `notes` VALUES (4,'one line',NULL),(5,'(()))',NULL),(6,'',NULL);",
  'INSERT INTO `hidden` (`id`, `secret`) VALUES', "(1,'(');",
  "INSERT IGNORE INTO `hidden` VALUES (2,')');",
  '',
].join('\n');

async function count(chunkSize: number): Promise<DumpRowCounter> {
  const bytes = Buffer.from(DUMP, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  const counter = new DumpRowCounter();
  let out = 0;
  await pipeline(Readable.from(chunks), counter, new Writable({ write(c: Buffer, _e, done) { out += c.length; done(); } }));
  t.equal(out, bytes.length, 'every byte passes through');
  return counter;
}

for (const size of [1, 7, 64, 1 << 16]) {
  t.test(`chunks of ${size} bytes`, async (t) => {
    const c = await count(size);
    t.same(Object.fromEntries(c.counts), { empty_one: 0, notes: 6, hidden: 2 });
    t.same(c.binlog, { file: 'binlog.000007', position: 4242 });
  });
}
